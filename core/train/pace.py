"""The trainer's clock and its reports, so that its loop reads as a loop (core/train/trainer.py ``Trainer._loop``).

``RunClock``: the training seconds of the epoch in progress (pauses left out; the compile comes before the first
epoch; a resumed epoch goes on from its seconds so far), the recent speed and the estimated time to the end.
``Reporter``: what the loop tells the outside world between iterations: ``Progress`` events (at most
``PROGRESS_EVERY_S``), the one-time estimate in events.log, and the status.json heartbeat (every ``HEARTBEAT_S``).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from core.store.runs import HEARTBEAT_S
from core.train.events import Progress
from core.util.errors import carry_on
from core.util.formatting import duration, rate

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.25       # at most 4 Progress events a second
MIN_RATE_STEPS = 3            # iterations a speed is measured over, at least


class RunClock:
    """Seconds and speed. A *segment* is the stretch since the last start, resume, pause or epoch end: the speed is
    measured over it, so a pause or an evaluation never reads as slow training."""

    def __init__(self, batch_size: int, now: Callable[[], float] = time.monotonic):
        self.batch_size, self.now = batch_size, now
        self.epoch_start = self.seg_start = now()
        self.seg_steps = 0
        self.rate: float | None = None     # images/s over the last measured segment
        self.last_eval_s = 0.0             # the last evaluation's seconds (one per remaining epoch in the ETA)

    def start_epoch(self, seconds_so_far: float = 0.0) -> None:
        t = self.now()
        self.epoch_start, self.seg_start, self.seg_steps = t - seconds_so_far, t, 0

    def tick(self) -> None:
        self.seg_steps += 1

    def resume_after(self, held: float) -> None:
        """After a pause of ``held`` seconds: the epoch's clock skips them; a new segment starts."""
        self.epoch_start += held
        self.seg_start, self.seg_steps = self.now(), 0

    def epoch_seconds(self) -> float:
        return self.now() - self.epoch_start

    def measure(self) -> bool:
        """Update the speed from the segment so far; True the first time a speed is known."""
        if self.seg_steps < MIN_RATE_STEPS:
            return False
        first = self.rate is None
        self.rate = self.seg_steps * self.batch_size / max(self.now() - self.seg_start, 1e-9)
        return first

    def eta(self, steps_left: int, epochs_left: int) -> float | None:
        """Seconds left: the remaining iterations at the recent speed, plus one evaluation per remaining epoch."""
        if not self.rate:
            return None
        return round(steps_left * self.batch_size / self.rate + self.last_eval_s * epochs_left, 1)


@contextlib.contextmanager
def beating(beat: Callable[[], object], every_s: float) -> Iterator[None]:
    """Call ``beat`` every ``every_s`` seconds from a thread of its own during the block: work that takes minutes
    (compiling the training step, core/train/compile_warmup.py ``warm_up``) keeps the heartbeat going, so the run is
    not taken for crashed (a status older than the heartbeat limit reads as crashed; Slurm jobs and the scheduler go by
    it)."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(every_s):
            with carry_on(log, "a heartbeat"):   # a full disk: the step's own writes will say so
                beat()
    thread = threading.Thread(target=loop, name="reslab-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


class Reporter:
    """Progress events and the heartbeat of one trainer (``core.train.trainer.Trainer``: its state, setup, latest
    point, ``emit``, ``log`` and ``write_status``)."""

    def __init__(self, trainer: Any, clock: RunClock):
        self.trainer, self.clock = trainer, clock
        self.last_progress = clock.now()

    def eta(self) -> float | None:
        s, st = self.trainer.setup, self.trainer.train_state
        return self.clock.eta(s.total_steps - st.step, s.total_epochs - st.epoch)

    def elapsed(self) -> float:
        return self.trainer.train_state.elapsed_s + self.clock.epoch_seconds()

    def tick(self, lr: float) -> None:
        """Between iterations: a Progress event when one is due (and the estimate to the end once the speed is
        known), and the heartbeat when it is due."""
        tr, t = self.trainer, self.clock.now()
        if t - self.last_progress >= PROGRESS_EVERY_S:
            if self.clock.measure():  # once the speed is known: how long the whole run takes (absurd lengths show)
                left = tr.setup.total_steps - tr.train_state.step
                tr.log(f"estimated time to the end: {duration(self.eta())} at {rate(self.clock.rate)} images/s "
                       f"({left:,} iterations left)")
            self.progress(lr)
            self.last_progress = t
        if t - tr.last_heartbeat >= HEARTBEAT_S:
            self.heartbeat(step=tr.train_state.step, lr=lr, elapsed_s=self.elapsed(), images_per_s=self.clock.rate,
                           eta_s=self.eta(), **tr.latest_fields())

    def heartbeat(self, **fields: Any) -> None:
        self.trainer.write_status(**fields)

    def progress(self, lr: float) -> None:
        tr = self.trainer
        s, st = tr.setup, tr.train_state
        loss, err = tr.latest
        tr.emit(Progress(tr.run_folder.id, epoch=st.epoch + 1, total_epochs=s.total_epochs,
                         iter_in_epoch=min(st.step - st.epoch * s.iters_per_epoch, s.iters_per_epoch),
                         iters_per_epoch=s.iters_per_epoch, step=st.step, total_steps=s.total_steps, loss=loss,
                         err=err, lr=lr, images_per_s=self.clock.rate, eta_s=self.eta(), elapsed_s=self.elapsed()))
