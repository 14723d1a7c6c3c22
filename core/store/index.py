"""An index of the runs folder: each run's summary (``RunInfo`` as its files say it) cached in SQLite, so listing ten
thousand runs reads only the folders whose files changed.

The folders stay the only truth: runs are written by trainers in any process, on any machine of a shared filesystem,
and none of them writes the index. A reader checks every run folder against its row's signature (a stat of the
folder and of each file the row was read from: core/store/folder_check.py), trusts the row where it holds, reads
the others through ``RunInfo.read_files`` and writes their rows back (what a row holds: core/store/index_rows.py).
What no file says (is the owner of a ``running`` run alive? is a queued run in a queue?) is settled on every
listing (``RunInfo.settle``), never cached; the rows of the other states are stored settled (their verdict follows
from the files the signature covers), with the run's line of `runs` output.

The index is ``.index.sqlite`` in the runs folder (a dot name: never taken for a run), or in the user's cache folder
when the runs folder is read-only; folders of fewer than ``MIN_RUNS`` runs are read directly and get none.
SQLite in WAL mode with a busy timeout, so two readers refreshing at once take turns; a missing, corrupt, locked or
foreign-version index is rebuilt from the folders (a line in the log, nothing for the user); a reader that cannot
use it at all reads the folders as before.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from core.store.folder_check import check, chunks, signatures, workers
from core.store.folder_check import pool as pool_of
from core.store.index_rows import LINES_VERSION, VERSION, entry, info_of, row_text, summary_line
from core.store.info import RunInfo, order_key, settle
from core.store.rules import ACTIVE
from core.util.collector import paused

log = logging.getLogger(__name__)

INDEX_FILE = ".index.sqlite"
RACY_NS = 2 * 10**9                    # files changed this recently are read again next time, never trusted
MIN_RUNS = 64                          # an index for folders of at least this many runs
MIN_RUNS_ENV = "RESLAB_INDEX_MIN_RUNS"
# what ``settle`` decides from the clock or another process's lock, which no signature covers: a row of a run in one
# of these states is settled at each listing; any other row is stored settled (its verdict follows from its files)
LIVE = (*ACTIVE, "queued")


def _read_one(run: Any, sig: tuple[str, int] | None, settled: int) -> tuple[RunInfo, str | None]:
    """One folder read through its files: its RunInfo (a live one not yet settled) and its row, or None when the row
    must not be cached: its newest file is younger than a clock tick or two (a file changed twice within one tick,
    same size, would keep its mtime: git's "racy clean" case). The signature was taken before the read: a file
    changed while it was read has a newer mtime now, so the next listing reads it again."""
    info = RunInfo.read_files(run)
    live = info.state in LIVE
    if not live:
        info = settle(info, run)
    return info, (row_text(info, not live) if sig is not None and sig[1] < settled else None)


def _read_chunk(paths: list[str], sigs: list[tuple[str, int] | None], settled: int,
                run_type: type) -> list[tuple[str, bool]]:
    """A worker process's share of a cold listing: each folder's row (cached or not: the parent makes its RunInfo
    from it) and whether the parent may cache it. ``run_type``: core.store.runs.Run (passed: that module imports
    this one)."""
    out = []
    for path, sig in zip(paths, sigs):
        info, row = _read_one(run_type(Path(path)), sig, settled)
        out.append((row or row_text(info, info.state not in LIVE), row is not None))
    return out


def _read(pool: ProcessPoolExecutor | None, stale: list[tuple[Any, tuple[str, int] | None]],
          settled: int) -> list[tuple[RunInfo, str | None]]:
    """Read these folders through their files: here, or in the workers when there are any."""
    if pool is not None:
        try:
            return _read_parallel(pool, stale, settled)
        except (OSError, BrokenProcessPool) as exc:
            log.warning("run index: the workers failed (%s); reading here", exc)
    return [_read_one(run, sig, settled) for run, sig in stale]


def _read_parallel(pool: ProcessPoolExecutor, stale: list[tuple[Any, tuple[str, int] | None]],
                   settled: int) -> list[tuple[RunInfo, str | None]]:
    parts = chunks(stale)
    done = pool.map(_read_chunk, [[str(run.path) for run, _ in c] for c in parts],
                    [[sig for _, sig in c] for c in parts], [settled] * len(parts),
                    [type(stale[0][0])] * len(parts))
    out = []
    for chunk, rows in zip(parts, done):
        for (run, _), (row, keep) in zip(chunk, rows):
            info, _settled = info_of(run.id, run.path, row)
            out.append((info, row if keep else None))
    return out


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
        return self._guarded(runs, complete, False)

    def lines(self, runs: Iterable[Any]) -> list[tuple[tuple[float, str], str]]:
        """Each of ``runs`` (every run of the folder) as its place in the run lists (``order_key``) and its
        ``summary_line``: what `runs` writes. The line of an unchanged folder whose row is stored settled is the
        index's own (no row decoded, no RunInfo made: 10,000 runs listed in half the time); the others are made
        as ``infos`` makes their RunInfo."""
        runs = list(runs)
        if len(runs) < min_runs():
            self.reads = len(runs)
            return [entry(RunInfo.read(run)) for run in runs]
        return self._guarded(runs, True, True)

    def _guarded(self, runs: list[Any], complete: bool, lines: bool) -> list:
        """``_refresh``, with an index that cannot be used rebuilt, or the folders read without it."""
        def direct() -> list:
            self.reads = len(runs)
            infos = [RunInfo.read(run) for run in runs]
            return [entry(info) for info in infos] if lines else infos

        try:
            with self._open() as db:
                return self._refresh(db, runs, complete, lines)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):      # another process holds it longer than we wait
                log.warning("run index %s is busy (%s): reading the folders", self.path, exc)
                return direct()
            log.warning("run index %s unusable (%s): rebuilding it", self.path, exc)
            self._remove()
        except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:    # corrupt: rows or the file
            log.warning("run index %s unusable (%s): rebuilding it", self.path, exc)
            self._remove()
        try:
            with self._open() as db:
                return self._refresh(db, runs, complete, lines)
        except (sqlite3.Error, OSError) as exc:      # a folder no process may write, a disk that is full...
            log.warning("run index %s unusable (%s): reading the folders", self.path, exc)
            return direct()

    def cached(self, runs: Iterable[Any], folder_size: int | None = None) -> list[RunInfo]:
        """The RunInfo of each of ``runs`` that has a row, as the row says it, its files unchecked (no signature):
        what a view shows at once while ``infos`` checks them (the app's table of ten thousand runs, complete in
        a fraction of a second, then corrected where a folder changed since). Live rows are settled now. [] when
        there is no usable index, or the folder (``folder_size`` runs) is too small to keep one."""
        runs = list(runs)
        if (len(runs) if folder_size is None else folder_size) < min_runs() or not self.path.exists():
            return []
        try:
            with self._open() as db:
                rows = self._select(db, "data", [r.id for r in runs])
            out = []
            with paused():
                for run in runs:
                    if run.id in rows:
                        info, done = info_of(run.id, run.path, rows[run.id][0])
                        out.append(info if done else settle(info, run))
            return out
        except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:
            log.info("run index %s: no cached rows (%s)", self.path, exc)
            return []

    def _refresh(self, db: sqlite3.Connection, runs: list[Any], complete: bool, lines: bool = False) -> list:
        """Each run's RunInfo (or with ``lines``, its ``_entry``), from its row where its folder is unchanged."""
        rows = self._select(db, "sig, data, listed, created, listed_by", None if complete else [r.id for r in runs])
        mine = {run_id for run_id, row in rows.items() if row[2] is not None and row[4] == LINES_VERSION} \
            if lines else set()
        out, fresh, relined = [], [], []
        with pool_of(len(runs)) as pool:
            checked = check(pool, [(str(run.path), rows[run.id][0] if run.id in rows else None) for run in runs])
            with paused():      # meanwhile the rows are decoded (0.2 s at 10,000): those of changed folders are dropped
                decoded = [info_of(run.id, run.path, rows[run.id][1]) if run.id in rows and run.id not in mine
                           else None for run in runs]
            same = checked()
            changed = [run for run, ok in zip(runs, same) if not ok]
            # the signature a row is stored under is taken before its folder is read: a file changed during the
            # read has a later mtime than it says, so the next listing reads the folder again
            stale = list(zip(changed, signatures(pool if workers(len(changed)) > 1 else None,
                                                  [str(run.path) for run in changed])))
            settled = time.time_ns() - RACY_NS
            read = _read(pool if workers(len(stale)) > 1 else None, stale, settled)
        for (run, sig), (info, row) in zip(stale, read):
            live = info.state in LIVE
            if row is not None:
                listed, created = (None, None) if live else (summary_line(info), order_key(info)[0])
                fresh.append((run.id, sig[0], row, listed, created, LINES_VERSION))
            info = settle(info, run) if live else info
            out.append(entry(info) if lines else info)
        self.reads = len(out)
        for run, ok, found in zip(runs, same, decoded):
            if not ok:
                continue
            if found is None:                       # (lines) the index's line of a settled row
                _sig, _data, listed, created, _by = rows[run.id]
                out.append(((created, run.id), listed))
                continue
            info, done = found
            info = info if done else settle(info, run)
            if not lines:
                out.append(info)
                continue
            made = entry(info)
            out.append(made)
            if done:        # a settled row whose line another release made: this code's from now on (if unchanged)
                relined.append((made[1], made[0][0], LINES_VERSION, run.id, rows[run.id][0]))
        gone = set(rows) - {r.id for r in runs} if complete else set()
        if fresh or gone or relined:
            with db:
                db.executemany("INSERT OR REPLACE INTO runs (id, sig, data, listed, created, listed_by) "
                               "VALUES (?, ?, ?, ?, ?, ?)", fresh)
                db.executemany("DELETE FROM runs WHERE id = ?", [(g,) for g in gone])
                db.executemany("UPDATE runs SET listed = ?, created = ?, listed_by = ? WHERE id = ? AND sig = ?",
                               relined)
        return out

    @staticmethod
    def _select(db: sqlite3.Connection, columns: str, ids: list[str] | None) -> dict[str, tuple]:
        """id -> the row's ``columns`` for these runs (None: every row; so for many: one scan beats thousands of
        parameters)."""
        if ids is None or len(ids) > 500:
            found = db.execute(f"SELECT id, {columns} FROM runs")
        else:
            found = db.execute(f"SELECT id, {columns} FROM runs WHERE id IN ({','.join('?' * len(ids))})", ids)
        return {row[0]: row[1:] for row in found}

    @contextlib.contextmanager
    def _open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            found = db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
            if found is None or found[0] != VERSION:
                if found is not None:
                    log.info("run index %s is of another version (%s): rebuilding it", self.path, found[0])
                with db:
                    db.execute("DROP TABLE IF EXISTS runs")
                    db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, sig TEXT, data TEXT, listed TEXT, "
                               "created REAL, listed_by TEXT)")
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (VERSION,))
            yield db
        finally:
            db.close()

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.path}{suffix}")
