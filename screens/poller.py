"""The runs folder read off the event loop: a thread of the App's scans the folders, the App takes the result in.

Every ``poll_interval`` (and at once when asked: ``ask``, e.g. for the run a trainer event names) the poller thread
scans the store (``RunWatcher.scan``: the stats and file reads of the changed folders, the folder's queue order),
reads the files of the runs open screens follow (screens/run_files.py) and posts both to the App (``Polled``),
which applies them on the event loop (``App.took_poll``, no I/O) and tells the screens. One scan at a time: the
next starts once the last one was taken in, so the watcher's bookkeeping has one writer. A failing scan is logged
and told once (tried again at the next interval); the thread ends with the app (never blocked on it: an app that
has closed takes no message).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from textual.message import Message
from textual.worker import get_current_worker

from core.serve import queue as Q

log = logging.getLogger("reslab.tui")


class Polled(Message):
    """The poller's scans for the App (``App.on_polled``), which sets ``taken`` once it has applied them."""

    def __init__(self, scans: list, queue_order: list[str] | None, taken: threading.Event,
                 files: dict | None = None, then: list | None = None):
        super().__init__()
        self.scans, self.queue_order, self.taken = scans, queue_order, taken
        self.files = files or {}           # run id -> RunFiles of the followed runs whose files changed
        self.then = then or []             # what waited for these scans (``Poller.ask(then=...)``), run once applied


class Poller:
    def __init__(self, app: Any, interval: float):
        self.app, self.interval = app, interval
        self._asks: set[str | None] = set()
        self._thens: list = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._last_full = 0.0
        self._told: str | None = None
        self._stopped = threading.Event()     # the app is closing (``stop``; Textual does not always cancel workers)

    def start(self) -> None:
        self.app.run_worker(self._loop, thread=True, exit_on_error=False, group="poll", name="reading the runs folder")

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    def ask(self, *only: str | None, then=None) -> None:
        """Scan now: the whole folder (no id, or None) or these runs' folders; ``then()`` runs on the event loop
        once the App has taken that scan in (an action that changed a run goes on with its new state)."""
        with self._lock:
            self._asks.update(only or (None,))
            if then is not None:
                self._thens.append(then)
        self._wake.set()

    def _take(self) -> tuple[set[str | None], list]:
        self._wake.wait(max(0.0, self._last_full + self.interval - time.monotonic()))
        self._wake.clear()
        with self._lock:
            asks, self._asks, thens, self._thens = self._asks, set(), self._thens, []
        if time.monotonic() - self._last_full >= self.interval:
            asks.add(None)
        return asks, thens

    def _loop(self) -> None:
        worker = get_current_worker()
        while True:
            asks, thens = self._take()
            if worker.is_cancelled or self._stopped.is_set():
                return
            try:
                scans, order = self._scan(asks)
                files = self.app.followed.read(None if None in asks else asks)   # (screens/run_files.py)
            except Exception as exc:  # noqa: BLE001 - any failure of a read: told once, tried again
                self._tell(exc)
                with self._lock:
                    self._thens[:0] = thens                 # they wait for the next scan that works
                continue
            taken = threading.Event()    # not call_from_thread: it would wait for ever on an app that has closed
            self.app.post_message(Polled(scans, order, taken, files, thens))
            while not taken.wait(0.1):
                if worker.is_cancelled or self._stopped.is_set():
                    return

    def _scan(self, asks: set[str | None]) -> tuple[list, list[str] | None]:
        watcher = self.app.watcher
        scans = [watcher.scan(only) for only in sorted(a for a in asks if a is not None)]
        order = None
        if None in asks:
            self._last_full = time.monotonic()
            scan = watcher.scan()
            scans.append(scan)
            queued = watcher.any_queued or any(i.state == "queued" for _, _, i in scan.read)
            order = [q.run.id for q in Q.queued(self.app.store)] if queued else []
        return scans, order

    def _tell(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        log.error("reading the runs folder failed: %s", text, exc_info=exc)
        if text != self._told:       # once per distinct failure, not every second
            self._told = text
            self.app.notify(f"reading {self.app.store.root} failed: {text}; trying again",      # (thread-safe)
                            title="Runs folder", severity="error", timeout=10)
