"""The App's own run queue: runs launched "in this app" train one after another in one worker thread, so runs of
one app never compete for a device. It holds the order (``runs``: training now, next, ...) and each run's stop and
pause events (plain ``threading.Event``, which the trainer polls); the App's worker takes ``next_run`` and calls
``forget`` when the run ends. Runs launched to the folder's queue are the scheduler's (core/serve) and never here."""
from __future__ import annotations

import threading


class InAppQueue:
    def __init__(self) -> None:
        self.runs: list[str] = []                         # [training now, next, ...]
        self.stop_events: dict[str, threading.Event] = {}
        self.pause_events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._worker_active = False

    def add(self, run_ids: list[str]) -> bool:
        """Queue runs; True when the caller must start the worker (none is taking runs now)."""
        with self._lock:
            for run_id in run_ids:
                self.stop_events[run_id] = threading.Event()
                self.pause_events[run_id] = threading.Event()
                self.runs.append(run_id)
            start = not self._worker_active
            self._worker_active = True
        return start

    def next_run(self) -> str | None:
        """The run to train now, or None (and the worker ends) when the queue is empty."""
        with self._lock:
            if not self.runs:
                self._worker_active = False
                return None
            return self.runs[0]

    def forget(self, run_id: str) -> None:
        with self._lock:
            if run_id in self.runs:
                self.runs.remove(run_id)
            self.stop_events.pop(run_id, None)
            self.pause_events.pop(run_id, None)

    def __contains__(self, run_id: str) -> bool:
        return run_id in self.runs

    def position(self, run_id: str) -> int | None:
        """0 for the run training now, 1 for the next one ...; None when not queued here."""
        return self.runs.index(run_id) if run_id in self.runs else None

    def after(self, run_id: str) -> list[str]:
        """The runs queued here after ``run_id``."""
        return self.runs[self.runs.index(run_id) + 1:] if run_id in self.runs else []

    def stopped_before_start(self, run_id: str) -> bool:
        stop = self.stop_events.get(run_id)
        return stop is None or stop.is_set()

    def request_stop(self, run_id: str) -> bool:
        """Set the run's stop event; False when the run is not this app's."""
        event = self.stop_events.get(run_id)
        if event is not None:
            event.set()
        return event is not None

    def toggle_pause(self, run_id: str) -> bool | None:
        """Pause or continue a run of this app: True paused, False continued, None not this app's run."""
        event = self.pause_events.get(run_id)
        if event is None:
            return None
        if event.is_set():
            event.clear()
            return False
        event.set()
        return True
