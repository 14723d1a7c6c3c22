"""The companion of a compile (core/train/compile_warmup.py ``warm_up``): the heartbeat, and a stop that need not
wait for the compile to end.

A torch.compile of the training step takes seconds on a CPU and minutes on a GPU, in torch's code, where the trainer
cannot look at its requests. Nothing trains before it ends: its warm-up steps are undone (``TrainStep.restoring``),
the run's files are those of its start (its checkpoint, or step 0 with none) and nothing is written meanwhile but
the heartbeat. So a stop asked during the compile may end the process at once: the run is recorded as ``stopped``
at the step it started from (what a resume continues from, as after a kill), the lock is let go, and the caller's
``leave`` ends the process (the CLI's ``exit_early``: its line, its exit code; core/train/first_step.py guards the
model's building before it and stands down here, so one thread answers a stop). The compile is abandoned with the
process, which is
why only a trainer that owns its process does this (``train``/``resume`` of one process, the scheduler's trainers):
the TUI trains in a thread of its own process, where torch's compiler cannot be interrupted safely (an exception
raised into it could leave dynamo's or inductor's shared state half-changed for every later compile in the app),
and a torchrun run's processes must stop together (they agree between iterations); both stop after the compile.

A lock (``gate``) orders the two ends: the compile's end takes it before training begins, an abandoning stop takes it
and never lets go (the process ends), so a run never trains a step after it was recorded stopped.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from core.store.runs import HEARTBEAT_S
from core.util.errors import carry_on

log = logging.getLogger(__name__)

WATCH_S = 0.1          # how often the thread looks at the stop event (the request file: every REQUEST_POLL_S)


def leave_of(trainer: Any) -> Callable[[], object] | None:
    """What ends the trainer's process at a stop during the compile: its ``exit_early`` (the CLI's), none under DDP."""
    return None if trainer.dist.many else trainer.exit_early


class CompileWatch:
    """Context manager around the compile of ``trainer`` (a core.train.trainer.Trainer: its requests, state, log and
    status). ``leave()`` (the trainer's ``exit_early``, none under DDP): ends the process once the run is recorded
    stopped; None: stops wait for the compile's end (the heartbeat goes on)."""

    def __init__(self, trainer: Any):
        self.trainer, self.leave = trainer, leave_of(trainer)
        self.gate = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="reslab-compile", daemon=True)

    def __enter__(self) -> CompileWatch:
        guard = getattr(self.trainer, "first_guard", None)
        if self.leave is not None and guard is not None:
            guard.stand_down()    # from here this watch answers a stop (the whole compile, not its first call only)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.gate:          # held for good by a stop that ends the process: training never begins then
            self.done.set()
        self.thread.join()

    def _loop(self) -> None:
        beat = time.monotonic()
        while not self.done.wait(WATCH_S):
            if time.monotonic() - beat >= HEARTBEAT_S:
                beat = time.monotonic()
                with carry_on(log, "the heartbeat during a compile"):   # a full disk: the step's writes say so
                    self.trainer.write_status()
            if self.leave is not None:
                with carry_on(log, "reading the request file during a compile"):   # (every round: no warning)
                    self.trainer.requests.check(sealed=False)    # the request file (another process's `stop`)
                if self.trainer.requests.stopping:
                    self._abandon()

    def _abandon(self) -> None:
        if not self.gate.acquire(blocking=False) or self.done.is_set():
            return               # the compile has just ended: the loop stops at its first iteration
        tr = self.trainer
        with carry_on(log, "recording the end of the compile"):
            tr.write_status(compiling=False)          # it compiles no more
        where = tr.train_state.position(tr.setup.iters_per_epoch)
        tr._end("stopped", f"stopped during the compile at {where}: the compile "
                           f"abandoned, nothing had trained since the run's start; resumable")
        if not tr.lock_held:
            with carry_on(log, "releasing the run's lock", logging.WARNING):
                tr.run_folder.release_lock()
        try:
            self.leave()
        finally:
            os._exit(1)          # ``leave`` ends the process; should it return, the gate must never open
