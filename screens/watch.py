"""Cheap, repeated reading of the run store for the TUI (the run folder is the bus).

The app polls about once a second. ``RunWatcher.poll()`` lists the store, re-reads a run's summary only when one
of its files changed (size or mtime) or when the run is active (its liveness depends on a lock and a heartbeat,
not on file contents), and reports which runs changed. ``JsonlTail`` reads a growing ``.jsonl`` file
incrementally, so following steps.jsonl of a long run costs only the new lines.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.store.index import RunIndex
from core.store.info import order_key
from core.store.reader import STEP_FIELDS, problem
from core.store.runs import ACTIVE, Run, RunInfo, RunStore
from core.util.files import MAX_ROWS_BYTES, open_regular

try:   # a 164-epoch run's 6,400 steps.jsonl lines decode in ~1/5 of json's time: the detail screen opens sooner
    from orjson import JSONDecodeError as _OrjsonError
    from orjson import loads as _fast_loads
except ImportError:      # pragma: no cover - orjson is a dependency; json does the same, slower
    _fast_loads, _OrjsonError = json.loads, ValueError

_WATCHED = ("config.json", "status.json", "epochs.jsonl", "lock")
SLICES = 5              # a run that no process trains is looked at every 5th poll (about every 5 s); active ones always
LOOKS = 500             # ... or less often in a larger folder: at most this many ended runs looked at a poll (10,000
                        # runs: every 20th poll; an idle app's polls stay under 1% of a core)
DEEP = 10               # ... at its folder's mtime (run files are replaced by rename); its files every 10th look
                        # (~50 s; ~200 s at 10,000 runs: a file edited in place by hand, which no trainer does)
WAITING = (*ACTIVE, "queued")   # a run that leaves these states has ended (``ended``)


def _folder(path: str):
    try:
        st = os.stat(path)
        return st.st_mtime_ns, st.st_ino
    except OSError:
        return None


def _signature(path: str) -> tuple:
    sig = [_folder(path)]
    for name in _WATCHED:
        try:
            st = os.stat(f"{path}/{name}")
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append(None)
    return tuple(sig)


@dataclass
class Scan:
    """What one ``RunWatcher.scan`` read: the folders re-read, the runs gone, the folders left for later."""

    infos: dict[str, RunInfo]                         # the runs as the scan began (a copy)
    pending: list[str]
    began: int = 0                                    # the watcher's count of applied scans when it began
    read: list[tuple[str, tuple, RunInfo]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)


class RunWatcher:
    """The store's runs as RunInfo, refreshed on demand; only changed folders are re-read.

    What a poll costs stays small in a lab's folder of thousands of runs: the folder is listed again only when its
    own mtime changed (a run added, removed or renamed), an ended run is looked at on every ``SLICES``-th poll
    (rarer past ``LOOKS`` runs a poll; a run resumed from elsewhere shows within seconds; one that trains is looked
    at every poll): its folder's mtime, which changes when a run file is replaced (they are written by rename), and
    on every ``DEEP``-th look its files too (a file edited in place); and ``poll(budget=N)`` reads at most N new
    folders, newest first, leaving the rest in ``pending`` for ``read``
    (a thread may call it) and ``apply``, so the first screen does not wait for every run."""

    def __init__(self, store: RunStore):
        self.store = store
        self.infos: dict[str, RunInfo] = {}
        self.pending: list[str] = []            # folders listed but not read yet (newest first)
        # runs shown from their index rows whose folders ``read`` has not checked yet (``apply(verified=False)``):
        # polls leave them to that check, which replaces each whose folder changed
        self.unverified: set[str] = set()
        self._sigs: dict[str, tuple] = {}
        self._ids: list[str] = []
        self._root_mtime: int | None = None
        self._tick = 0
        self._active: set[str] = set()          # ids of runs whose state is ACTIVE (kept with ``infos``)
        self._queued: set[str] = set()          # ... and of those queued
        self._polled: list[str] | None = None   # the listing the last full poll went through
        self._turns: list[list[str]] = []       # that listing's ids by the poll on which an ended run's turn comes
        self._slices = SLICES                   # how many polls apart an ended run's turns are (LOOKS)
        self.ended: list[str] = []              # runs seen queued or training that have ended since (the app's)
        self._applied = 0                       # scans applied so far
        self._read_in: dict[str, int] = {}      # run id -> the count of the scan its info was last taken from
        self._order: dict[str, tuple] = {}      # run id -> its place in ``ordered`` (core/store/info.py: order_key)
        self._ordered: list[str] | None = None  # the ids in that order (None: sort again)
        self.version = 0                        # counts the changes of ``infos`` (what is worked out from them waits
                                                # for the next)

    def _list(self) -> list[str]:
        root = str(self.store.root)
        try:
            mtime = os.stat(root).st_mtime_ns
        except OSError:
            self._root_mtime, self._ids = None, []
            return []
        if mtime != self._root_mtime:
            try:
                entries = [e for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")]
            except OSError:
                entries = []
            entries.sort(key=lambda e: _mtime(e), reverse=True)      # newest first: read those before the rest
            self._ids, self._root_mtime = [e.name for e in entries], mtime
        return self._ids

    def _due(self, scan: Scan) -> list[str]:
        """The ids a full poll looks at. The same listing as the last poll went through (every run in it read or
        pending): only the runs that train and the ended runs whose turn it is, not a loop over every run. A new
        listing: all of it; the runs gone from it are forgotten (``scan.gone``) when the scan is applied."""
        ids = self._list()
        if ids is self._polled:
            turn = self._turns[self._tick % self._slices] if self._turns else []
            active = set(self._active)
            return [*active, *(r for r in turn if r not in active)]
        present = set(ids)
        scan.gone = [r for r in scan.infos if r not in present]
        scan.pending = [r for r in scan.pending if r in present]
        self._slices = max(SLICES, -(-len(ids) // LOOKS))
        self._polled, self._turns = ids, [[] for _ in range(self._slices)]
        for run_id in ids:
            self._turns[hash(run_id) % self._slices].append(run_id)
        return ids

    def poll(self, only: str | None = None, budget: int | None = None) -> set[str]:
        """Refresh; return the ids whose summary changed (added, removed or different). ``budget``: read at most
        this many folders not seen before (the rest wait in ``pending``). ``scan`` then ``apply_scan``."""
        return self.apply_scan(self.scan(only, budget))

    def scan(self, only: str | None = None, budget: int | None = None) -> Scan:
        """What ``poll`` reads (the folders' I/O): safe in a thread while the app's thread reads ``infos``, since it
        changes none of what the screens read; one scan at a time. ``apply_scan`` takes it in."""
        # copies: the app's thread may change them meanwhile
        scan = Scan(infos=dict(self.infos), pending=list(self.pending), began=self._applied)
        self._tick += 1
        if only is not None:
            ids = [only] if (self.store.root / only).is_dir() else []
            if not ids and only in scan.infos:
                scan.gone.append(only)
        else:
            ids = self._due(scan)
        waiting = set(scan.pending)
        unchecked = set(self.unverified) if only is None else set()     # (a copy: the app's thread changes it)
        root = str(self.store.root)
        for run_id in ids:
            old = scan.infos.get(run_id)
            if run_id in unchecked:
                continue                                 # checked by ``read``, not here (a full read each)
            if old is None:
                if run_id in waiting and only is None:
                    continue                             # read by read_pending
                if budget is not None and only is None:
                    if budget <= 0:
                        scan.pending.append(run_id)
                        continue
                    budget -= 1
            elif only is None and old.state not in ACTIVE:
                h = hash(run_id)
                turn = self._tick - h % self._slices
                if turn % self._slices:
                    continue                             # an ended run: its turn comes every ``_slices`` polls
                if (turn // self._slices + h // self._slices) % DEEP and \
                        _folder(f"{root}/{run_id}") == self._sigs.get(run_id, (None,))[0]:
                    continue                             # nothing replaced in its folder (one stat, not five)
            sig = _signature(f"{root}/{run_id}")
            if old is not None and sig == self._sigs.get(run_id) and old.state not in ACTIVE:
                continue
            scan.read.append((run_id, sig, Run(self.store.root / run_id).info()))
        return scan

    def apply_scan(self, scan: Scan) -> set[str]:
        """Take a scan in (on the thread that owns ``infos``; no I/O); return the ids whose summary changed."""
        changed = set(scan.gone)
        for gone in scan.gone:
            self._forget(gone)
        self.pending = [r for r in scan.pending if r not in self.infos]
        self._applied += 1
        for run_id, sig, info in scan.read:
            if self._read_in.get(run_id, 0) > scan.began:
                continue                 # read again by a scan applied since this one began (a newer reading)
            self._read_in[run_id] = self._applied
            self.unverified.discard(run_id)
            old = self.infos.get(run_id)
            self._sigs[run_id] = sig
            if old is None or _summary(old) != _summary(info):
                changed.add(run_id)
            self._keep(run_id, info)
        return changed

    def _keep(self, run_id: str, info: RunInfo) -> None:
        old = self.infos.get(run_id)
        if old is not None and old.state in WAITING and info.state not in WAITING:
            self.ended.append(run_id)
        if info is not old:                     # (a RunInfo the folder bore out is kept: nothing changed)
            self.infos[run_id] = info
            self.version += 1
        key = order_key(info)
        if self._order.get(run_id) != key:
            self._order[run_id], self._ordered = key, None
        if info.state in ACTIVE:
            self._active.add(run_id)
        else:
            self._active.discard(run_id)
        if info.state == "queued":
            self._queued.add(run_id)
        else:
            self._queued.discard(run_id)

    def read(self, run_ids: list[str]) -> list[tuple[str, tuple, RunInfo]]:
        """Read these (pending) folders, through the runs folder's index (core/store/index.py: only folders whose
        files changed are read); safe in a thread, as it changes nothing here: ``apply`` the result."""
        root = str(self.store.root)
        sigs = {run_id: _signature(f"{root}/{run_id}") for run_id in run_ids}
        infos = RunIndex(self.store.root).infos([Run(self.store.root / r) for r in run_ids], complete=False,
                                                folder_size=len(self._ids))
        return [(info.id, sigs[info.id], info) for info in infos]

    def read_cached(self, run_ids: list[str]) -> list[tuple[str, None, RunInfo]]:
        """What the index's rows say of these folders, unchecked (``RunIndex.cached``): a lab's whole table at once;
        ``apply(..., verified=False)``, then ``read`` them. Safe in a thread."""
        index = RunIndex(self.store.root)
        return [(info.id, None, info) for info in index.cached([Run(self.store.root / r) for r in run_ids],
                                                                 folder_size=len(self._ids))]

    def apply(self, read: list[tuple[str, tuple | None, RunInfo]], verified: bool = True) -> set[str]:
        """Take what ``read`` (or ``read_cached``: not ``verified``) read, on the thread that owns ``infos``; return
        the ids added or, for folders shown from their rows until now, changed."""
        done = {run_id for run_id, _, _ in read}
        if self.pending:
            self.pending = [r for r in self.pending if r not in done]
        changed = set()
        for run_id, sig, info in read:
            old = self.infos.get(run_id)
            if old is not None and not (verified and run_id in self.unverified):
                continue                      # read meanwhile by a poll (a newer reading)
            if verified:
                self.unverified.discard(run_id)
                self._sigs[run_id] = sig
            else:
                self.unverified.add(run_id)
            if old is None or _summary(old) != _summary(info):
                changed.add(run_id)
            elif verified:                    # the index's row was right: the same RunInfo stays (the table's cells,
                info = old                    # the filter's words are not made again for 10,000 runs)
            self._keep(run_id, info)
        return changed

    def _forget(self, run_id: str) -> None:
        self.unverified.discard(run_id)
        self.infos.pop(run_id, None)
        self._order.pop(run_id, None)
        self._ordered, self.version = None, self.version + 1
        self._sigs.pop(run_id, None)
        self._read_in.pop(run_id, None)
        self._active.discard(run_id)
        self._queued.discard(run_id)

    @property
    def any_active(self) -> bool:
        """Does a run train (running or paused) now, as last read?"""
        return bool(self._active)

    @property
    def any_queued(self) -> bool:
        return bool(self._queued)

    def list_now(self) -> list[str]:
        """List the folder now (I/O: a thread's), newest first."""
        return list(self._list())

    def listed(self) -> list[str]:
        """The folder's last listing, newest first (no I/O)."""
        return list(self._ids)

    def ids(self) -> set[str]:
        """Every run id of the folder's last listing, read or not (no I/O)."""
        return {*self._ids, *self.infos}

    def ordered(self) -> list[RunInfo]:
        """In the order of RunStore.list() (sorted again only when a run comes, goes or changes its place: 10,000
        runs sorted at every key of a filter took 40 ms of it)."""
        if self._ordered is None:
            self._ordered = sorted(self.infos, key=self._order.__getitem__)
        infos = self.infos
        return [infos[run_id] for run_id in self._ordered]

    @property
    def active_count(self) -> int:
        """How many runs train (running or paused), as last read."""
        return len(self._active)


def _mtime(entry: os.DirEntry) -> int:
    try:
        return entry.stat().st_mtime_ns
    except OSError:
        return 0


def _summary(info: RunInfo) -> tuple:
    """What a run's row is made of, for telling whether a re-read changed it (the status compared as a dict: as
    JSON text it took a second for ten thousand runs)."""
    return (info.state, info.damaged, info.status, info.epoch_count, info.final_test_err, info.best_test_err,
            info.epoch_s, info.config, info.notes, info.job)


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
                row = _fast_loads(line)
            except _OrjsonError:
                try:
                    row = json.loads(line)        # NaN or Infinity (a diverged run's loss): json reads them
                except (ValueError, RecursionError):
                    continue  # a torn or foreign line is skipped, never fatal for a view
            except RecursionError:
                continue
            if not problem(row, STEP_FIELDS, ("step",)):  # the rows steps.jsonl holds, typed (core/store/reader.py)
                self.rows.append(row)
                added = True
        return added or reset

