"""An index of the runs folder: each run's summary (``RunInfo`` as its files say it) cached in SQLite, so listing ten
thousand runs reads only the folders whose files changed.

The folders stay the only truth: runs are written by trainers in any process, on any machine of a shared filesystem,
and none of them writes the index. A reader looks at every run folder (one ``scandir``: the name, size, mtime and
kind of each file a summary is read from, and the folder's own mtime), trusts the row whose signature is unchanged,
reads the others through ``RunInfo.read_files`` and writes their rows back. What no file says (is the owner of a
``running`` run alive? is a queued run in a queue?) is settled on every listing (``RunInfo.settle``), never cached;
the rows of the other states are stored settled (their verdict follows from the files the signature covers).

The index is ``.index.sqlite`` in the runs folder (a dot name: never taken for a run), or in the user's cache folder
when the runs folder is read-only; folders of fewer than ``MIN_RUNS`` runs are read directly and get none.
SQLite in WAL mode with a busy timeout, so two readers refreshing at once take turns; a missing, corrupt, locked or
foreign-version index is rebuilt from the folders (a line in the log, nothing for the user); a reader that cannot
use it at all reads the folders as before.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

try:
    import orjson
except ImportError:          # optional: json alone reads the same rows
    orjson = None

from core.spec.config import RunConfig
from core.store.info import RunInfo, settle
from core.store.rules import ACTIVE

log = logging.getLogger(__name__)

INDEX_FILE = ".index.sqlite"
RACY_NS = 2 * 10**9                    # files changed this recently are read again next time, never trusted
MIN_RUNS = 64                          # an index for folders of at least this many runs
MIN_RUNS_ENV = "RESLAB_INDEX_MIN_RUNS"
# appended to while a run trains and read by no summary: their changes need no re-read (steps.jsonl's size is read:
# one too large makes the run damaged)
UNREAD = frozenset({"events.log", "lock", "best.pt", "request"})
# what ``settle`` decides from the clock or another process's lock, which no signature covers: a row of a run in one
# of these states is settled at each listing; any other row is stored settled (its verdict follows from its files)
LIVE = (*ACTIVE, "queued")
_FIELDS = {f.name: f.default for f in fields(RunConfig)}
_TUPLES = {name for name, default in _FIELDS.items() if isinstance(default, tuple)}
# a row is only good for the code that wrote it: the layout of RunInfo and RunConfig is part of the version
VERSION = "3:" + hashlib.sha1(" ".join(sorted(_FIELDS)).encode()).hexdigest()[:12]


def signature(path: str) -> tuple[str, int] | None:
    """What a summary of the run folder ``path`` depends on: its mtime and, for each file a summary may read, name,
    kind, inode, size and mtime (a file replaced by rename changes the folder's mtime and the inode, one edited in
    place its own mtime); and the newest of those mtimes. None when the folder cannot be listed."""
    try:
        newest = os.stat(path).st_mtime_ns
        parts = [str(newest)]
        with os.scandir(path) as entries:
            for e in entries:
                if e.name in UNREAD:
                    continue
                st = e.stat(follow_symlinks=False)
                parts.append(f"{e.name}:{st.st_mode >> 12}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
                newest = max(newest, st.st_mtime_ns)
    except OSError:
        return None
    return "|".join(sorted(parts)), newest


def _config_from(data: dict | None) -> RunConfig | None:
    """A RunConfig from a row written by this version (validated when it was read from config.json): set field by
    field, ~30x faster than ``RunConfig.from_dict``, which ten thousand rows would pay on every listing."""
    if data is None:
        return None
    cfg = object.__new__(RunConfig)
    values = {**_FIELDS, **data}
    for name in _TUPLES:
        values[name] = tuple(values[name])
    cfg.__dict__.update(values)
    return cfg


def _row(info: RunInfo, settled: bool) -> str:
    return json.dumps({"state": info.state, "config": info.config.to_dict() if info.config else None,
                       "status": info.status, "epochs": info.epochs, "damaged": info.damaged,
                       "repairable": info.repairable, "restartable": info.restartable, "job": info.job,
                       "settled": settled}, allow_nan=True)


def _loads(text: str) -> dict:
    """A row: orjson where installed (a listing of ten thousand rows decodes 2x faster), json for a row it refuses
    (NaN or Infinity, which json writes and orjson does not read)."""
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _info(run_id: str, path: Path, text: str) -> tuple[RunInfo, bool]:
    """The row's RunInfo, and whether it is settled already."""
    d = _loads(text)
    info = RunInfo(run_id, path, d["state"], _config_from(d["config"]), d["status"], d["epochs"], d["damaged"],
                   d["repairable"], d["job"])
    info.restartable = d["restartable"]
    return info, d["settled"]


def min_runs() -> int:
    """Folders with fewer runs are read directly (fast enough, and no file appears in a small folder)."""
    try:
        return int(os.environ.get(MIN_RUNS_ENV) or MIN_RUNS)
    except ValueError:
        return MIN_RUNS


def index_path(root: Path) -> Path:
    """Beside the runs, or in the user's cache folder when the runs folder cannot be written."""
    if os.access(root, os.W_OK):
        return root / INDEX_FILE
    from core.store.settings import cache_dir

    key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return cache_dir() / f"index-{key}.sqlite"


class RunIndex:
    """The index of one runs folder. ``infos(runs)``: every run's RunInfo, refreshed where its files changed."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = index_path(self.root)
        self.reads = 0          # folders read through their files by the last ``infos`` (the rest came from rows)

    def infos(self, runs: Iterable[Any], complete: bool = True, folder_size: int | None = None) -> list[RunInfo]:
        """RunInfo of each of ``runs`` (Run objects of this folder). ``complete``: they are every run of the folder,
        so rows of folders not among them (deleted by hand) are dropped; else ``folder_size`` says how many the
        folder holds (whether it is worth an index)."""
        runs = list(runs)
        if (len(runs) if folder_size is None else folder_size) < min_runs():
            self.reads = len(runs)
            return [RunInfo.read(run) for run in runs]
        try:
            with self._open() as db:
                return self._refresh(db, runs, complete)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):      # another process holds it longer than we wait
                log.warning("run index %s is busy (%s): reading the folders", self.path, exc)
                self.reads = len(runs)
                return [RunInfo.read(run) for run in runs]
            log.warning("run index %s unusable (%s): rebuilding it", self.path, exc)
            self._remove()
        except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:    # corrupt: rows or the file
            log.warning("run index %s unusable (%s): rebuilding it", self.path, exc)
            self._remove()
        try:
            with self._open() as db:
                return self._refresh(db, runs, complete)
        except (sqlite3.Error, OSError) as exc:      # a folder no process may write, a disk that is full...
            log.warning("run index %s unusable (%s): reading the folders", self.path, exc)
            self.reads = len(runs)
            return [RunInfo.read(run) for run in runs]

    def _refresh(self, db: sqlite3.Connection, runs: list[Any], complete: bool) -> list[RunInfo]:
        rows = self._select(db, "sig", None if complete else [r.id for r in runs])
        out, fresh, wanted = [], [], []
        settled = time.time_ns() - RACY_NS
        for run in runs:
            sig = signature(str(run.path))
            if sig is not None and rows.get(run.id) == sig[0]:
                wanted.append(run)
                continue
            info = RunInfo.read_files(run)
            live = info.state in LIVE
            if not live:
                info = settle(info, run)
            # cached only when nothing changed while it was read and its newest file is older than a clock tick or
            # two: a file changed twice within one tick (same size) would keep its mtime (git's "racy clean" case)
            if sig is not None and sig[1] < settled and signature(str(run.path)) == sig:
                fresh.append((run.id, sig[0], _row(info, not live)))
            out.append(settle(info, run) if live else info)
        self.reads = len(out)
        if wanted:
            cached = self._select(db, "data", [r.id for r in wanted])
            for run in wanted:
                info, done = _info(run.id, run.path, cached[run.id])
                out.append(info if done else settle(info, run))
        gone = set(rows) - {r.id for r in runs} if complete else set()
        if fresh or gone:
            with db:
                db.executemany("INSERT OR REPLACE INTO runs (id, sig, data) VALUES (?, ?, ?)", fresh)
                db.executemany("DELETE FROM runs WHERE id = ?", [(g,) for g in gone])
        return out

    @staticmethod
    def _select(db: sqlite3.Connection, column: str, ids: list[str] | None) -> dict[str, str]:
        """id -> ``column`` for these runs (None: every row; so for many: one scan beats thousands of parameters)."""
        if ids is None or len(ids) > 500:
            return dict(db.execute(f"SELECT id, {column} FROM runs").fetchall())
        marks = ",".join("?" * len(ids))
        return dict(db.execute(f"SELECT id, {column} FROM runs WHERE id IN ({marks})", ids).fetchall())

    @contextlib.contextmanager
    def _open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, sig TEXT, data TEXT)")
            found = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            if found is None or found[0] != VERSION:
                if found is not None:
                    log.info("run index %s is of another version (%s): rebuilding it", self.path, found[0])
                with db:
                    db.execute("DELETE FROM runs")
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
            yield db
        finally:
            db.close()

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.path}{suffix}")
