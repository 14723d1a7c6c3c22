"""What a run's screens draw besides its summary (curves, epochs, events.log, checkpoint, notes, layer responses),
read by the poller's thread, never on the event loop.

A screen that shows a run follows it (``FollowsFiles``: ``App.follow_files``, ``unfollow_files`` when it closes or
moves on); the poller (screens/poller.py) reads the followed runs' files with each scan, each file again only when its
size, mtime or inode changed (steps.jsonl from where it was read to), and posts the runs whose files changed; the App
keeps their ``RunFiles`` (``App.run_files``) and tells the screens with ``runs_changed_signal``, to which they
subscribe already. Before the first read a screen gets ``RunFiles()`` (``read`` False) and draws what the summary says.
"""
from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.store import reader
from core.store.info import RunInfo
from core.store.notes import NOTES_FILE, read_notes
from core.store.runs import REQUEST_FILE, Run

from .watch import JsonlTail

EVENT_LINES = 8          # events.log's last lines a screen shows (the detail 8, the monitor 4)
KEPT = 16                # runs whose reader and last reading are kept once no screen follows them


@dataclass(frozen=True)
class RunFiles:
    """One reading of a run's files (a copy: the screens may keep it while the poller reads on)."""

    read: bool = False                      # False: not read yet (a screen that has just opened)
    steps: list[dict] = field(default_factory=list)     # steps.jsonl's rows
    epochs: list[dict] = field(default_factory=list)    # epochs.jsonl's rows ([] when it cannot be read)
    events: list[str] = field(default_factory=list)     # events.log's last EVENT_LINES lines
    checkpoint: int | None = None           # checkpoint.pt's size; None: there is none
    best: int | None = None                 # best.pt's size
    notes: dict = field(default_factory=lambda: {"tags": [], "note": ""})
    responses: dict | None = None           # layer_responses.json when it belongs to checkpoint.pt
    request: str | None = None              # a request waiting for its trainer ('stop', 'pause', 'continue')


def _stamp(path: Path) -> tuple | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode


class _Reader:
    """One followed run's files as the poller's thread last read them."""

    def __init__(self, path: Path):
        self.path = path
        self.steps = JsonlTail(path / "steps.jsonl")
        self.stamps: dict[str, tuple | None] = {}
        self.last = RunFiles()

    def _changed(self, name: str) -> bool:
        stamp = _stamp(self.path / name)
        if name in self.stamps and self.stamps[name] == stamp:
            return False
        self.stamps[name] = stamp
        return True

    def read(self) -> RunFiles | None:
        """A new reading when any file changed since the last, else None."""
        last, new = self.last, {}
        if self.steps.read() or not last.read:
            new["steps"] = list(self.steps.rows)
        if self._changed("epochs.jsonl"):
            try:
                new["epochs"] = reader.read_rows(self.path / "epochs.jsonl")[0]
            except (OSError, ValueError):
                new["epochs"] = []
        if self._changed("events.log"):
            try:
                new["events"] = reader.read_log(self.path / "events.log", EVENT_LINES)
            except OSError:
                new["events"] = []
        for name, key in (("checkpoint.pt", "checkpoint"), ("best.pt", "best")):
            if self._changed(name):
                stamp = self.stamps[name]
                new[key] = stamp[1] if stamp is not None and stat.S_ISREG(stamp[3]) else None
        if self._changed(NOTES_FILE):
            new["notes"] = read_notes(self.path)
        if self._changed(REQUEST_FILE):
            new["request"] = reader.read_request(self.path / REQUEST_FILE)
        if self._changed("layer_responses.json") or "checkpoint" in new:
            from core.results.response_file import read_layer_responses

            new["responses"] = read_layer_responses(Run(self.path))
        if last.read and not new:
            return None
        self.last = RunFiles(read=True, **{**{k: getattr(last, k) for k in RunFiles.__dataclass_fields__
                                              if k != "read"}, **new})
        return self.last


class FollowedFiles:
    """The runs whose files open screens draw: followed and drawn on the event loop (``follow``, ``unfollow``,
    ``get``, ``take``), read in the poller's thread (``read``). The readers and readings of the last ``KEPT`` runs
    are kept after their screens close: a run opened again draws its last reading at once, and its steps.jsonl is
    read on from where it was (a 164-epoch run's thousands of lines are not parsed again)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()
        self._count: dict[str, int] = {}           # run id -> how many screens follow it
        self._fresh: set[str] = set()              # followed again: its next read posts a reading, changed or not
        self._readers: dict[str, _Reader] = {}     # the poller thread's own (the most recently read last)
        self._readings: dict[str, RunFiles] = {}   # the event loop's own (the most recently taken last)

    def follow(self, run_id: str) -> None:
        with self._lock:
            self._count[run_id] = self._count.get(run_id, 0) + 1
            self._fresh.add(run_id)

    def unfollow(self, run_id: str) -> None:
        with self._lock:
            left = self._count.get(run_id, 0) - 1
            if left > 0:
                self._count[run_id] = left
            else:
                self._count.pop(run_id, None)

    def followed(self) -> set[str]:
        with self._lock:
            return set(self._count)

    def read(self, only: set[str] | None = None) -> dict[str, RunFiles]:
        """(In the poller's thread) the followed runs whose files changed since their last reading, or that were
        followed again (``only``: these of them), with their new reading."""
        wanted = self.followed()
        out = {}
        for run_id in sorted(wanted if only is None else wanted & only):
            with self._lock:
                fresh = run_id in self._fresh
                self._fresh.discard(run_id)
            reader = self._readers.pop(run_id, None) or _Reader(self.root / run_id)
            self._readers[run_id] = reader
            files = reader.read()
            if files is not None or fresh:
                out[run_id] = reader.last
        _forget_oldest(self._readers, wanted)
        return out

    def take(self, readings: dict[str, RunFiles]) -> None:
        """(On the event loop) the poller's new readings."""
        for run_id, files in readings.items():
            self._readings.pop(run_id, None)
            self._readings[run_id] = files
        _forget_oldest(self._readings, self.followed())

    def get(self, run_id: str) -> RunFiles:
        """(On the event loop) the run's last reading; ``RunFiles()``, not ``read``, before the first."""
        return self._readings.get(run_id) or RunFiles()


def _forget_oldest(kept: dict, followed: set[str]) -> None:
    """Past KEPT, the oldest of ``kept`` that no screen follows go."""
    extra = len(kept) - KEPT
    if extra > 0:
        for run_id in [r for r in kept if r not in followed][:extra]:
            del kept[run_id]


class FollowsFiles:
    """Mixed into a screen that draws runs' files: ``follow_runs`` follows these runs (and no longer the ones it
    followed before); closing the screen follows none."""

    _following: tuple[str, ...] = ()

    def follow_runs(self, run_ids) -> None:
        for run_id in self._following:
            self.app.unfollow_files(run_id)
        self._following = tuple(run_ids)
        for run_id in self._following:
            self.app.follow_files(run_id)          # read by the poller's thread (now, then with each scan)

    def on_unmount(self) -> None:
        self.follow_runs(())


def with_files(info: RunInfo, files: RunFiles) -> RunInfo:
    """``info`` whose epochs are the reading's (core/results/groups.py draws curves from ``info.epochs``, which a run
    listed from the index would read on the event loop); before the first reading, those it holds, else none."""
    if files.read:
        return replace(info, _epochs=files.epochs)
    return info if info._epochs is not None else replace(info, _epochs=[])
