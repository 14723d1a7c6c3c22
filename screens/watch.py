"""Cheap, repeated reading of the run store for the TUI (the run folder is the bus).

The app polls about once a second. ``RunWatcher.poll()`` lists the store, re-reads a run's summary only when one
of its files changed (size or mtime) or when the run is active (its liveness depends on a lock and a heartbeat,
not on file contents), and reports which runs changed. ``JsonlTail`` reads a growing ``.jsonl`` file
incrementally, so following steps.jsonl of a long run costs only the new lines.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from core.store.reader import STEP_FIELDS, problem
from core.store.runs import ACTIVE, Run, RunInfo, RunStore, oldest_first
from core.util.files import MAX_ROWS_BYTES, open_regular

_WATCHED = ("config.json", "status.json", "epochs.jsonl", "lock")


def _signature(path: Path) -> tuple:
    sig = []
    for name in _WATCHED:
        try:
            st = os.stat(path / name)
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append(None)
    return tuple(sig)


class RunWatcher:
    """The store's runs as RunInfo, refreshed on demand; only changed folders are re-read."""

    def __init__(self, store: RunStore):
        self.store = store
        self.infos: dict[str, RunInfo] = {}
        self._sigs: dict[str, tuple] = {}

    def poll(self, only: str | None = None) -> set[str]:
        """Refresh; return the ids whose summary changed (added, removed or different)."""
        changed: set[str] = set()
        if only is not None:
            ids = [only] if (self.store.root / only).is_dir() else []
            if not ids and only in self.infos:
                del self.infos[only]
                self._sigs.pop(only, None)
                changed.add(only)
        else:
            try:
                ids = [e.name for e in os.scandir(self.store.root) if e.is_dir() and not e.name.startswith(".")]
            except OSError:
                ids = []
            for gone in set(self.infos) - set(ids):
                del self.infos[gone]
                self._sigs.pop(gone, None)
                changed.add(gone)
        for run_id in ids:
            path = self.store.root / run_id
            sig = _signature(path)
            old = self.infos.get(run_id)
            if old is not None and sig == self._sigs.get(run_id) and old.state not in ACTIVE:
                continue
            info = Run(path).info()
            self._sigs[run_id] = sig
            if old is None or _summary(old) != _summary(info):
                changed.add(run_id)
            self.infos[run_id] = info
        return changed

    def ordered(self) -> list[RunInfo]:
        """In the order of RunStore.list()."""
        return oldest_first(self.infos.values())


def _summary(info: RunInfo) -> tuple:
    return (info.state, info.damaged, json.dumps(info.status, sort_keys=True, default=str), len(info.epochs),
            info.config)


class JsonlTail:
    """Rows of steps.jsonl (a file that only grows), re-read from the start when it was rewritten (resume truncation);
    a line that is not a steps.jsonl row is skipped."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: list[dict] = []
        self._offset = 0
        self._ino: int | None = None
        self._partial = b""

    def read(self) -> bool:
        """Pick up new rows; True when rows changed."""
        try:
            st = os.stat(self.path)
        except OSError:
            if self.rows or self._offset:
                self.rows, self._offset, self._ino, self._partial = [], 0, None, b""
                return True
            return False
        if st.st_ino != self._ino or st.st_size < self._offset:
            self.rows, self._offset, self._ino, self._partial = [], 0, st.st_ino, b""
            reset = True
        else:
            reset = False
        if st.st_size == self._offset:
            return reset
        try:
            with os.fdopen(open_regular(self.path, os.O_RDONLY), "rb") as fh:   # never through a link
                fh.seek(self._offset)
                data = fh.read(MAX_ROWS_BYTES)     # a view of at most 128 MB at a time
        except OSError:
            return reset
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an unfinished last line waits for its newline
        added = False
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                continue  # a torn or foreign line is skipped, never fatal for a view
            if not problem(row, STEP_FIELDS, ("step",)):  # the rows steps.jsonl holds, typed (core/store/reader.py)
                self.rows.append(row)
                added = True
        return added or reset
