"""What an in-app run does in the App's training thread: train, post the trainer's events as messages, report."""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from textual.message import Message

from core.serve import queue as Q
from core.store.runs import RunError, RunLockedError, RunStore
from core.train.events import Progress, TrainerEvent

from .messages import TrainerEventMessage

log = logging.getLogger(__name__)

PROGRESS_MIN_INTERVAL_S = 0.2  # at most ~5 progress messages a second per run reach the UI


def train_one(store: RunStore, run_id: str, stop: threading.Event, pause: threading.Event,
              post: Callable[[Message], object]) -> tuple[str, str]:
    """Train one run in the calling (worker) thread, posting its events, throttled, as TrainerEventMessage.
    Never raises: every failure becomes a state and a readable message."""
    last = [0.0]

    def on_event(event: TrainerEvent) -> None:
        if isinstance(event, Progress):
            now = time.monotonic()
            if now - last[0] < PROGRESS_MIN_INTERVAL_S:
                return
            last[0] = now
        post(TrainerEventMessage(run_id, event))

    try:
        run = store.get(run_id)
        from core.train.trainer import Trainer

        # CPU runs leave one core to the interface so keys keep answering (no effect on GPU runs)
        threads = max(1, (os.cpu_count() or 1) - 1)
        run.acquire_lock()          # before the queue lets go of it: no scheduler starts it meanwhile
        try:
            Q.leave_by_hand(run)    # a queue's run trained here: the scheduler has nothing more to do for it
            state = Trainer(run, on_event=on_event, stop_event=stop, pause_event=pause, cpu_threads=threads,
                            lock_held=True).run()
        finally:
            run.release_lock()
    except RunLockedError as exc:
        return "running", f"{exc}; it keeps training there"
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"
        log.error("in-app training of run %s failed", run_id, exc_info=True)
        try:
            store.get(run_id).update_status(state="failed", error=message)
        except (RunError, OSError):      # gone, or a full disk: the run reads as crashed (its process is gone)
            log.warning("cannot record run %s as failed", run_id, exc_info=True)
        return "failed", message
    try:
        message = store.get(run_id).read_status().get("error") or ""
    except (RunError, OSError, ValueError):     # deleted meanwhile, or its status.json is damaged
        message = ""
    return state, message
