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
import multiprocessing as mp
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from pathlib import Path
from typing import Any

try:
    import orjson
except ImportError:          # optional: json alone reads the same rows
    orjson = None

from core.spec.config import RunConfig
from core.store.info import RunInfo, epoch_tally, order_key, run_summary_row, settle
from core.store.rules import ACTIVE
from core.util.collector import paused

log = logging.getLogger(__name__)

INDEX_FILE = ".index.sqlite"
RACY_NS = 2 * 10**9                    # files changed this recently are read again next time, never trusted
MIN_RUNS = 64                          # an index for folders of at least this many runs
MIN_RUNS_ENV = "RESLAB_INDEX_MIN_RUNS"
PARALLEL_MIN = 500                     # folders to read before a listing reads them in worker processes
WORKERS_ENV = "RESLAB_INDEX_WORKERS"
# appended to while a run trains and read by no summary: their changes need no re-read (steps.jsonl's size is read:
# one too large makes the run damaged)
UNREAD = frozenset({"events.log", "lock", "best.pt", "request"})
# what ``settle`` decides from the clock or another process's lock, which no signature covers: a row of a run in one
# of these states is settled at each listing; any other row is stored settled (its verdict follows from its files)
LIVE = (*ACTIVE, "queued")
_FIELDS = {f.name: f.default for f in fields(RunConfig)}
_TUPLES = {name for name, default in _FIELDS.items() if isinstance(default, tuple)}
_DIR_FD = os.stat in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")    # (not on Windows)
_LISTED = {name: list(d) if name in _TUPLES else d for name, d in _FIELDS.items()}    # as config.to_dict() says them
# a row is only good for the code that wrote it: the layout of RunInfo and RunConfig, and the settings' defaults (a row
# keeps only the settings that differ from them), are part of the version
VERSION = "7:" + hashlib.sha1(repr(sorted(_LISTED.items())).encode()).hexdigest()[:12]
# a row's summary line is used only by the code that made it (``summary_line``): a digest of that code, kept with the
# line. Another release's line is made afresh from the row (as fast as before lines were kept), never a rebuild: two
# releases sharing a runs folder do not undo each other's index
_LISTING_CODE = ("core/store/info.py", "core/store/rules.py", "core/store/index.py", "core/spec/config.py",
                 "core/spec/archs.py", "core/util/formatting.py")


def _lines_version() -> str:
    digest = hashlib.sha1(VERSION.encode())
    root = Path(__file__).resolve().parents[2]
    for name in _LISTING_CODE:
        try:
            digest.update((root / name).read_bytes())
        except OSError:             # (run from somewhere its sources are not: the version alone)
            digest.update(name.encode())
    return digest.hexdigest()[:16]


LINES_VERSION = _lines_version()


def signature(path: str) -> tuple[str, int] | None:
    """What a summary of the run folder ``path`` depends on: its mtime, then for each file a summary may read, by
    name, its name, kind, inode, size and mtime (a file replaced by rename changes the folder's mtime and the inode,
    one edited in place its own mtime, one made or removed the folder's mtime); and the newest of those mtimes. None
    when the folder cannot be listed."""
    try:
        folder = os.stat(path).st_mtime_ns
        newest, parts = folder, []
        with os.scandir(path) as entries:
            for e in entries:
                if e.name in UNREAD:
                    continue
                st = e.stat(follow_symlinks=False)
                parts.append(f"{e.name}:{st.st_mode >> 12}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
                newest = max(newest, st.st_mtime_ns)
    except OSError:
        return None
    parts.sort()
    return f"{folder}|" + "|".join(parts), newest


def unchanged(path: str, stored: str | None) -> bool:
    """Whether the folder's ``signature`` is still ``stored``, read with a stat of the folder and one of each file it
    names, no listing: while the folder's mtime is the same, no file was made, removed or renamed in it (a row is
    only stored once that mtime is older than RACY_NS, so a change since has a later one). 40% fewer calls than
    ``signature``: ten thousand folders checked in 0.3 s here instead of 0.5-0.7."""
    if stored is None:
        return False
    folder, *files = stored.split("|")
    try:
        if not _DIR_FD:
            sig = signature(path)
            return sig is not None and sig[0] == stored
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        if str(os.fstat(fd).st_mtime_ns) != folder:
            return False
        for part in files:
            name = part[:part.index(":")]
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if f"{name}:{st.st_mode >> 12}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}" != part:
                return False
    except (OSError, ValueError):
        return False
    finally:
        os.close(fd)
    return True


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
    """The run's summary as a row: its settings where they differ from the defaults, and of epochs.jsonl only what
    lists need (``epoch_tally``; a 164-epoch run's rows would make the row 40 KB and the index 400 MB)."""
    config = None if info.config is None else \
        {k: v for k, v in info.config.to_dict().items() if not (type(v) is type(d := _LISTED.get(k)) and v == d)}
    return json.dumps({"state": info.state, "config": config, "status": info.status,
                       "tally": epoch_tally(info.epochs), "notes": info.notes, "damaged": info.damaged,
                       "repairable": info.repairable,
                       "restartable": info.restartable, "job": info.job, "settled": settled}, allow_nan=True)


def summary_line(info: RunInfo) -> str:
    """The run's ``run_summary_row`` as one line of JSON, as `runs --format json` writes it: by orjson where it is
    installed, else by json (non-ASCII escaped). The index keeps it for a run whose row is stored settled, so a
    listing of ten thousand such runs makes no RunInfo at all."""
    row = run_summary_row(info)
    return orjson.dumps(row, default=str).decode() if orjson is not None else json.dumps(row, default=str)


def _entry(info: RunInfo) -> tuple[tuple[float, str], str]:
    return order_key(info), summary_line(info)


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
    tally = d["tally"]     # no rows: none was read (a damaged run's reading stops at its first bad file), none to read
    info = RunInfo(run_id, path, d["state"], _config_from(d["config"]), d["status"], None if tally["count"] else [],
                   d["damaged"], d["repairable"], d["job"], restartable=d["restartable"], tally=tally,
                   notes=d["notes"])
    return info, d["settled"]


def _read_one(run: Any, sig: tuple[str, int] | None, settled: int) -> tuple[RunInfo, str | None]:
    """One folder read through its files: its RunInfo (a live one not yet settled) and its row, or None when the row
    must not be cached: its newest file is younger than a clock tick or two (a file changed twice within one tick,
    same size, would keep its mtime: git's "racy clean" case). The signature was taken before the read: a file
    changed while it was read has a newer mtime now, so the next listing reads it again."""
    info = RunInfo.read_files(run)
    live = info.state in LIVE
    if not live:
        info = settle(info, run)
    return info, (_row(info, not live) if sig is not None and sig[1] < settled else None)


def _read_chunk(paths: list[str], sigs: list[tuple[str, int] | None], settled: int,
                run_type: type) -> list[tuple[str, bool]]:
    """A worker process's share of a cold listing: each folder's row (cached or not: the parent makes its RunInfo
    from it) and whether the parent may cache it. ``run_type``: core.store.runs.Run (passed: that module imports
    this one)."""
    out = []
    for path, sig in zip(paths, sigs):
        info, row = _read_one(run_type(Path(path)), sig, settled)
        out.append((row or _row(info, info.state not in LIVE), row is not None))
    return out


def workers(folders: int) -> int:
    """Worker processes for ``folders`` run folders: one per CPU this process may use (at most 8) for a listing of at
    least PARALLEL_MIN (a cold index: 10,000 folders read in 2x less time on two cores); ``RESLAB_INDEX_WORKERS``
    sets the count for a listing of any size (1: this process only)."""
    asked = os.environ.get(WORKERS_ENV, "")
    if asked.strip().isdigit():
        return max(1, int(asked)) if folders > 1 else 1
    try:
        count = min(8, len(os.sched_getaffinity(0)))
    except AttributeError:                    # (sched_getaffinity: Linux only)
        count = min(8, os.cpu_count() or 1)
    return count if folders >= PARALLEL_MIN else 1


@contextlib.contextmanager
def _pool(folders: int):
    """Worker processes for a listing of ``folders``, or None: forked, so only from a process of one thread (a fork
    while another thread holds a lock would copy it held): the app's thread reads its folders itself."""
    count = workers(folders)
    if count < 2 or threading.active_count() > 1 or "fork" not in mp.get_all_start_methods():
        yield None
        return
    pool = ProcessPoolExecutor(count, mp_context=mp.get_context("fork"))
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def _chunks(items: list) -> list[list]:
    size = -(-len(items) // (workers(len(items)) * 4))    # four chunks a worker: the last ones finish together
    return [items[i:i + size] for i in range(0, len(items), size)]


def _sign_chunk(paths: list[str]) -> list[tuple[str, int] | None]:
    return [signature(path) for path in paths]


def _check_chunk(pairs: list[tuple[str, str | None]]) -> list[bool]:
    return [unchanged(path, stored) for path, stored in pairs]


def _signatures(pool: ProcessPoolExecutor | None, paths: list[str]) -> list[tuple[str, int] | None]:
    """Each folder's ``signature``: the stat calls of ten thousand folders, shared among the workers."""
    if pool is not None:
        try:
            return [sig for chunk in pool.map(_sign_chunk, _chunks(paths)) for sig in chunk]
        except (OSError, BrokenProcessPool) as exc:
            log.warning("run index: the workers failed (%s); reading here", exc)
    return _sign_chunk(paths)


def _unchanged(pool: ProcessPoolExecutor | None, pairs: list[tuple[str, str | None]]) -> Callable[[], list[bool]]:
    """``unchanged`` for each (folder, stored signature), started now and collected by calling what this returns:
    the workers, where there are any, stat the folders while this process goes on (decoding the rows)."""
    if pool is not None and any(stored is not None for _, stored in pairs):
        try:
            results = pool.map(_check_chunk, _chunks(pairs))

            def collect() -> list[bool]:
                try:
                    return [same for chunk in results for same in chunk]
                except (OSError, BrokenProcessPool) as exc:
                    log.warning("run index: the workers failed (%s); checking here", exc)
                    return _check_chunk(pairs)
            return collect
        except (OSError, BrokenProcessPool) as exc:
            log.warning("run index: the workers failed (%s); checking here", exc)
    return lambda: _check_chunk(pairs)


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
    chunks = _chunks(stale)
    done = pool.map(_read_chunk, [[str(run.path) for run, _ in c] for c in chunks],
                    [[sig for _, sig in c] for c in chunks], [settled] * len(chunks),
                    [type(stale[0][0])] * len(chunks))
    out = []
    for chunk, rows in zip(chunks, done):
        for (run, _), (row, keep) in zip(chunk, rows):
            info, _settled = _info(run.id, run.path, row)
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
            return [_entry(RunInfo.read(run)) for run in runs]
        return self._guarded(runs, True, True)

    def _guarded(self, runs: list[Any], complete: bool, lines: bool) -> list:
        """``_refresh``, with an index that cannot be used rebuilt, or the folders read without it."""
        def direct() -> list:
            self.reads = len(runs)
            infos = [RunInfo.read(run) for run in runs]
            return [_entry(info) for info in infos] if lines else infos

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
                        info, done = _info(run.id, run.path, rows[run.id][0])
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
        out, fresh = [], []
        with _pool(len(runs)) as pool:
            checked = _unchanged(pool, [(str(run.path), rows[run.id][0] if run.id in rows else None) for run in runs])
            with paused():      # meanwhile the rows are decoded (0.2 s at 10,000): those of changed folders are dropped
                decoded = [_info(run.id, run.path, rows[run.id][1]) if run.id in rows and run.id not in mine
                           else None for run in runs]
            same = checked()
            changed = [run for run, ok in zip(runs, same) if not ok]
            # the signature a row is stored under is taken before its folder is read: a file changed during the
            # read has a later mtime than it says, so the next listing reads the folder again
            stale = list(zip(changed, _signatures(pool if workers(len(changed)) > 1 else None,
                                                  [str(run.path) for run in changed])))
            settled = time.time_ns() - RACY_NS
            read = _read(pool if workers(len(stale)) > 1 else None, stale, settled)
        for (run, sig), (info, row) in zip(stale, read):
            live = info.state in LIVE
            if row is not None:
                listed, created = (None, None) if live else (summary_line(info), order_key(info)[0])
                fresh.append((run.id, sig[0], row, listed, created, LINES_VERSION))
            info = settle(info, run) if live else info
            out.append(_entry(info) if lines else info)
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
            out.append(_entry(info) if lines else info)
        gone = set(rows) - {r.id for r in runs} if complete else set()
        if fresh or gone:
            with db:
                db.executemany("INSERT OR REPLACE INTO runs (id, sig, data, listed, created, listed_by) "
                               "VALUES (?, ?, ?, ?, ?, ?)", fresh)
                db.executemany("DELETE FROM runs WHERE id = ?", [(g,) for g in gone])
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
