"""Stop and pause, as the trainer obeys them between iterations.

Three sources: ``threading.Event``s (the TUI's buttons, the CLI's signal handlers), the run's request file (another
process: ``tui_app.py stop``, the TUI of another session; looked at every ``REQUEST_POLL_S``), and under DDP the
other processes of the run: they agree (core/train/distributed.py ``Dist.agree``) each time the trainer seals its
device window (every ``log_every`` iterations, the same ones on every process), so all of them stop or pause at the
same step, without a host barrier per iteration; until then a request waits. Any process may ask to stop (torchrun
passes SIGTERM to each); pausing is rank 0's.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from core.train.distributed import SINGLE, Dist

REQUEST_POLL_S = 0.5          # how often the request file is looked at
STOP_CARRIES_S = 120.0        # a stop asked this recently of a running run is obeyed by the process that takes it over


class Requests:
    def __init__(self, run, dist: Dist = SINGLE, stop_event: threading.Event | None = None,
                 pause_event: threading.Event | None = None, log: Callable[[str], None] | None = None):
        self.run, self.dist = run, dist
        self.stop_event = stop_event or threading.Event()
        self.pause_event = pause_event or threading.Event()
        self.external_pause = False              # a pause asked for through the request file (or by rank 0)
        self.log = log or (lambda message: None)
        self.last_poll = 0.0
        self.agreed = (False, False)             # DDP: (stop, pause) as all processes last agreed

    @property
    def asked_to_pause(self) -> bool:
        return self.pause_event.is_set() or self.external_pause

    @property
    def paused(self) -> bool:
        """Pause now (under DDP: as agreed, never on one process alone)."""
        return self.agreed[1] if self.dist.many else self.asked_to_pause

    @property
    def stopping(self) -> bool:
        """Stop now (under DDP: as agreed)."""
        return self.agreed[0] if self.dist.many else self.stop_event.is_set()

    def check(self, sealed: bool = True) -> None:
        """Between iterations: the request file when it is due, then (DDP, when the trainer just ``sealed`` its
        window) the agreement of all processes."""
        t = time.monotonic()
        if t - self.last_poll >= REQUEST_POLL_S:
            self.last_poll = t
            self.poll()
        if sealed:
            self.agree()

    def wait_while_paused(self, tick: Callable[[], object]) -> None:
        """Paused: look at the requests (and agree with the other processes) every 50 ms, calling ``tick`` (the
        heartbeat) in between, until continued or stopped."""
        while self.paused and not self.stopping:
            time.sleep(0.05)
            self.poll()
            self.agree()
            tick()

    def take_over(self, state_before: str | None) -> None:
        """At the trainer's start: a request left from before is dropped, except a recent stop of a run that was
        ``running``: the process that was asked died before obeying (a torchrun restart, the scheduler's retry of a
        crash), and the one taking over must not train on as if nobody had asked."""
        try:
            recent = time.time() - os.stat(self.run.request_path).st_mtime < STOP_CARRIES_S
        except (OSError, AttributeError):      # no request, or a follower's view (never a request)
            recent = False
        if recent and state_before == "running" and self.run.read_request() == "stop":
            self.log("stop requested before this process took over the run: stopping at the first chance")
            self.stop_event.set()
        self.run.clear_request()

    def poll(self) -> None:
        """Obey the run's request file (rank 0 only: other ranks never see one) and delete it."""
        req = self.run.read_request()
        if not req:
            return
        self.run.clear_request()
        if req == "stop":
            self.log("stop requested from another process")
            self.stop_event.set()
        elif req == "pause":
            self.external_pause = True
        elif req == "continue":
            self.external_pause = False
            self.pause_event.clear()

    def agree(self) -> None:
        """DDP: every process stops if any was asked to, and pauses or continues with rank 0."""
        if self.dist.many:
            stop, pause = self.agreed = self.dist.agree(self.stop_event.is_set(), self.asked_to_pause)
            if stop:
                self.stop_event.set()
            if not self.dist.is_main:
                self.external_pause = pause
