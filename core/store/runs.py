"""The run store: one folder per run, written atomically, listed tolerantly.

The run folder is the bus: the trainer writes everything it knows there and every view (CLI, TUI, another
process) reads it back. Layout of ``<root>/<run-id>/``::

    config.json    RunConfig as JSON (+ schema_version)
    status.json    state, pid, host, heartbeat, progress, error; replaced atomically
    epochs.jsonl   one object per finished epoch
    steps.jsonl    one object every ``log_every`` iterations
    checkpoint.pt  latest resumable state (torch.load(weights_only=True)); best.pt: best epoch's weights
    events.log     human-readable log
    request        a stop/pause/continue request from another process (deleted when obeyed)
    lock           flock'ed by the one process that trains the run (core/store/lock.py)
    queue.json     the run's place in the queue and where the scheduler placed it (core/serve/queue.py)
    process.log    output of a detached trainer process (core/serve/launch.py)

Every file is read through core/store/reader.py (anything ResLab did not write raises; ``Run.info()`` makes the run
"damaged") and written through core/util/files.py (atomically, never through a symbolic link).
"""
from __future__ import annotations

import errno
import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.data.datasets import resolve_data_dir
from core.spec.config import ConfigError, RunConfig
from core.store import reader
from core.store.info import STATES, RunInfo, oldest_first, owner_alive, run_summary_row
from core.store.lock import FileLock, LockHeldError
from core.store.reader import DamagedFileError
from core.store.rules import ACTIVE
from core.util.files import append_bytes, atomic_write_bytes, atomic_write_json, remove_stale_temp_files, write_error

# the store's API; RunInfo, its states (info.py), ACTIVE (rules.py) and the list order are re-exported on purpose:
# a client of run folders imports them from here
__all__ = ["ACTIVE", "CREATING", "HEARTBEAT_S", "STALE_CREATION_S", "STATES", "LockLostError", "Run", "RunError",
           "RunInfo", "RunLockedError", "RunStore", "default_runs_dir", "extend_run", "iso", "live_state",
           "names_taken_text", "now", "oldest_first", "run_folder_note", "run_summary_row", "with_fixed_data_dir"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0                            # the trainer rewrites status.json at least this often
CREATING = ".creating-"                      # a run folder being created (RunStore.create), renamed when whole
STALE_CREATION_S = 600.0                     # such a folder untouched this long was left by a killed process
REQUEST_FILE = "request"                     # what the trainer is asked to do next: stop, pause or continue
_ID_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunError(Exception):
    """A run that does not exist, a bad run name, or a run that cannot do what was asked."""


class RunLockedError(RunError):
    """Another process is training this run."""


class LockLostError(RunError):
    """The run's lock file was deleted or replaced while this process held it: another process may own the run."""


def now() -> float:
    return time.time()


def iso(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now() if t is None else t))


# -- one run -----------------------------------------------------------------------------------------------------------
class Run:
    """A run folder. Cheap to create; reads files on demand."""

    def __init__(self, path: Path):
        self.path = path if isinstance(path, Path) else Path(path)    # (Path(a Path) parses it again: 10,000 listed)
        self.id = self.path.name
        self._file_lock: FileLock | None = None

    @property
    def _lock(self) -> FileLock:
        """Made on first use: a listing of ten thousand runs makes ten thousand Run objects and locks few."""
        if self._file_lock is None:
            self._file_lock = FileLock(self.path / "lock")
        return self._file_lock

    # paths
    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    epochs_path = property(lambda self: self.path / "epochs.jsonl")
    steps_path = property(lambda self: self.path / "steps.jsonl")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    best_path = property(lambda self: self.path / "best.pt")
    events_path = property(lambda self: self.path / "events.log")
    request_path = property(lambda self: self.path / REQUEST_FILE)
    lock_path = property(lambda self: self.path / "lock")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # reading: every read goes through core/store/reader.py, which raises for anything ResLab did not write
    def read_config(self) -> RunConfig:
        return reader.read_config(self.config_path)

    def read_status(self) -> dict:
        return reader.read_status(self.status_path)

    def read_job(self) -> dict:
        """slurm.json: the run's Slurm job as the scheduler last saw it (core/serve/slurm.py); {} for none."""
        try:
            return reader.read_object(self.path / "slurm.json")
        except (OSError, DamagedFileError):
            return {}

    def write_status(self, status: dict) -> None:
        self.check_still_ours()
        atomic_write_json(self.status_path, status)

    def update_status(self, **fields: Any) -> dict:
        try:
            status = self.read_status()
        except (FileNotFoundError, DamagedFileError):
            status = {}
        status.update(fields)
        self.write_status(status)
        return status

    # logs
    def read_epochs(self) -> list[dict]:
        return reader.read_rows(self.epochs_path)[0]

    def read_steps(self) -> list[dict]:
        """steps.jsonl's rows; lines that are not what ResLab writes are skipped (the curves are a view: a bad line
        there never makes the run damaged, and resume drops it with a warning); [] when it cannot be read at all."""
        try:
            return reader.read_rows(self.steps_path, tolerant=True)[0]
        except OSError:
            return []

    def append_jsonl(self, path: Path, rows: list[dict]) -> None:
        self.check_still_ours()
        if rows:
            append_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())

    def append_epoch(self, row: dict) -> None:
        self.append_jsonl(self.epochs_path, [row])

    def append_steps(self, rows: list[dict]) -> None:
        self.append_jsonl(self.steps_path, rows)

    def log(self, message: str) -> None:
        """One entry of events.log; the lines of a long message (a torch error) after the first are indented."""
        first, *rest = str(message).splitlines() or [""]
        append_bytes(self.events_path, (f"{iso()}  {first}\n" + "".join(f"    {line}\n" for line in rest)).encode())

    def read_events(self, tail: int | None = None) -> list[str]:
        """events.log's lines (control characters escaped); [] when it is missing or unreadable."""
        try:
            return reader.read_log(self.events_path, tail)
        except OSError:
            return []

    def truncate_logs(self, epochs_done: int, step: int) -> dict[str, int]:
        """Cut epochs.jsonl and steps.jsonl back to a checkpoint (epochs <= epochs_done, steps <= step). Rows that
        are not what ResLab writes are dropped too; returns how many per file (for a warning in events.log)."""
        self.check_still_ours()
        dropped = {}
        for path, key, last in ((self.epochs_path, "epoch", epochs_done), (self.steps_path, "step", step)):
            if not path.exists():
                continue
            rows, bad = reader.read_rows(path, tolerant=True)
            atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows
                                             if r[key] <= last).encode())
            if bad:
                dropped[path.name] = bad
        return dropped

    # requests from other processes
    def request(self, action: str) -> None:
        """Ask the process training this run to 'stop', 'pause' or 'continue' (between iterations)."""
        if action not in reader.REQUESTS:
            raise ValueError(f"unknown request {action!r}")
        atomic_write_bytes(self.request_path, action.encode())

    def read_request(self) -> str | None:
        return reader.read_request(self.request_path)

    def clear_request(self) -> None:
        """Remove the request file (a link in its place is removed, never followed; a directory is left alone)."""
        try:
            if not stat.S_ISDIR(os.lstat(self.request_path).st_mode):
                os.unlink(self.request_path)
        except FileNotFoundError:
            pass

    # the writer lock (core/store/lock.py; a scheduler hands it to the trainer process it starts)
    @property
    def holds_lock(self) -> bool:
        """True while this Run object holds the writer lock."""
        return self._lock.held

    def acquire_lock(self) -> None:
        """Become the one writer (or adopt the lock a scheduler handed over; a no-op when this object already holds
        it). RunLockedError: another has it; NotAFileError: ``lock`` is a link or a directory. Then removes the temp
        files a writer killed mid-save left behind (core/util/files.py)."""
        if not self._lock.adopt_inherited():
            try:
                self._lock.acquire()
            except LockHeldError:
                raise RunLockedError(f"run {self.id} is being trained by another process") from None
        remove_stale_temp_files(self.path, reader.LOCKED_FILES)

    def adopt_lock(self) -> bool:
        """True when this process holds the run's lock because a scheduler handed it over."""
        return self._lock.adopt_inherited()

    def release_lock(self) -> None:
        self._lock.release()

    def check_still_ours(self) -> None:
        """Raise LockLostError when this object holds the run's lock but its lock file was deleted or replaced
        (`rm runs/*/lock`): another process may train the run now, and the run's files (status, logs, checkpoint)
        are its to write. Every write of a lock holder checks first; events.log stays open to say why it left. A
        run folder deleted as a whole is left to the write itself to report."""
        if self._lock.held and not self._lock.still_ours() and self.path.is_dir():
            raise LockLostError(f"run {self.id}: its lock file was deleted or replaced while this process trained "
                                f"it; another process may train it now, so this one stopped without writing more")

    def is_locked(self) -> bool:
        """True when some process (this one included) holds the writer lock."""
        return self._lock.is_locked()

    # summary
    def info(self) -> RunInfo:
        """What lists show about the run. A folder that cannot be read or summarised is a damaged run, never an
        exception: one bad folder must not hide the others from any list."""
        try:
            info = RunInfo.read(self)
            run_summary_row(info)  # e.g. a status.json whose "epoch" is not a number
            return info
        except Exception as exc:
            log.debug("run %s is read as damaged", self.id, exc_info=True)
            return RunInfo(self.id, self.path, "damaged", damaged=f"{type(exc).__name__}: {exc}")


def live_state(run: Run) -> str:
    """The state from status.json and the lock alone (epochs are not read): what a scheduler polls."""
    try:
        status = run.read_status()
        state = status["state"] if status.get("state") in STATES else "damaged"
    except (OSError, ValueError, AttributeError):
        return "damaged"
    return "crashed" if state in ACTIVE and not owner_alive(run, status) else state


# -- the store ---------------------------------------------------------------------------------------------------------
def default_runs_dir() -> Path:
    return Path(os.environ.get("RESLAB_RUNS") or "runs")


def run_folder_note(path: Path | str) -> str | None:
    """When ``path`` (given as a runs folder) is a run's own folder: the sentence that says so and names the runs
    folder it belongs to, for every command that is given it; else None."""
    if not (Path(path) / "config.json").is_file():
        return None
    parent = Path(path).resolve().parent
    return f"{path} is a run folder; its runs folder is {parent} (--runs-dir {parent})"


def with_fixed_data_dir(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its data folder as an absolute path (``$RESLAB_DATA`` or ./data when it names none), fixed when
    the run is created: the run is resumed, evaluated or trained by the queue's scheduler from other working
    directories and with other environments, which must all read the same folder. Synthetic data reads none."""
    if cfg.dataset == "synthetic":
        return cfg
    return cfg.with_overrides(data_dir=str(resolve_data_dir(cfg).resolve()))


def names_taken_text(names: list[str], root: Path) -> str:
    """'a run named 'x' already exists in ROOT' (the CLI and the form say it alike; each adds what to do)."""
    if len(names) == 1:
        return f"a run named {names[0]!r} already exists in {root}"
    return f"runs named {', '.join(map(repr, names))} already exist in {root}"


class RunStore:
    """A folder of run folders."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    def make_id(self, cfg: RunConfig) -> str:
        if cfg.name:
            return cfg.name
        sc = {"A": "A", "B": "B", "none": "plain"}.get(cfg.shortcut, cfg.shortcut)
        wide = "" if cfg.width == 16 else f"-w{cfg.width}"
        if cfg.widths != (cfg.width, 2 * cfg.width, 4 * cfg.width):      # the lab report's 30/60/90: -w30_60_90
            wide = "-w" + "_".join(map(str, cfg.widths))
        seed = f"-s{cfg.seed}" if cfg.seed else ""      # a seed grid's runs tell apart by id, not by -2, -3
        arch = {"preact": "pa", "preact-bottleneck": "pab", "wrn": "wrn"}.get(cfg.arch, "r")
        return f"{arch}{cfg.depth}-{sc}{wide}-{cfg.optimizer}{seed}-{time.strftime('%Y%m%d-%H%M%S')}"

    def taken_names(self, configs: list[RunConfig]) -> list[str]:
        """The names given in ``configs`` that a run of this folder has already. A name given is the run's id: the
        CLI (--name) and the form (its name field) both refuse one in use, before anything is created, instead of
        placing the run at name-2 as a generated id is on a collision."""
        return [c.name for c in configs if c.name and os.path.lexists(self.root / c.name)]

    def check_root(self) -> None:
        """RunError when the runs folder cannot be one: it is a file, or lies under a file."""
        existing = next((p for p in (self.root, *self.root.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            where = "is a file" if existing == self.root else f"lies under {existing}, which is a file"
            raise RunError(f"the runs folder {self.root} {where}; a runs folder must be a folder")

    def create(self, cfg: RunConfig, state: str = "queued") -> Run:
        """Make a new run folder (unique id; a -2, -3... suffix on collision) with config.json and status.json.
        The folder is written under a hidden temporary name and renamed into place when whole, so a kill -9 midway
        never leaves a half-made run (list() removes such leftovers later). Raises RunError when it cannot (a
        read-only or full disk), leaving nothing behind."""
        self.check_root()
        cfg = with_fixed_data_dir(cfg)
        staging = self.root / f"{CREATING}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            staging.mkdir()
        except OSError as exc:
            raise RunError(f"cannot create a run in {self.root}: {write_error(exc, self.root)}") from None
        try:
            run = Run(staging)
            atomic_write_bytes(run.config_path, cfg.to_json().encode())
            run.write_status({"state": state, "created_at": now(), "updated_at": now(), "epoch": 0, "step": 0,
                              "host": socket.gethostname()})
            run.log(f"created {cfg.label()}")
            return self._place(staging, self.make_id(cfg))
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise RunError(f"cannot create a run in {self.root}: {write_error(exc, self.root)}") from None

    def _place(self, staging: Path, base: str) -> Run:
        """Rename a whole run folder to the first free id of ``base``, ``base-2``, ... (rename is atomic, and fails
        onto a run folder another process placed meanwhile)."""
        for i in range(1, 1000):
            path = self.root / (base if i == 1 else f"{base}-{i}")
            if os.path.lexists(path):
                continue
            try:
                os.rename(staging, path)
                return Run(path)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise
        raise RunError(f"cannot find a free run id near {base}")  # pragma: no cover

    def _remove_stale_creations(self) -> None:
        """Remove run folders a process was killed while creating (hidden, and untouched for STALE_CREATION_S)."""
        try:
            entries = [e for e in os.scandir(self.root) if e.name.startswith(CREATING)]
        except OSError:
            return
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False) and now() - entry.stat(follow_symlinks=False).st_mtime > \
                        STALE_CREATION_S:
                    shutil.rmtree(entry.path)
            except OSError:
                pass      # a runs folder others own (read-only to us): the hidden leftover stays, unlisted

    def _path_for(self, run_id: str) -> Path:
        name = str(run_id).rstrip("/")
        if not _ID_OK.fullmatch(name) or name in (".", ".."):
            raise RunError(f"invalid run id {run_id!r}: a run id is a folder name inside {self.root}")
        path = self.root / name
        root = self.root.resolve()
        if path.resolve().parent != root:
            raise RunError(f"invalid run id {run_id!r}: it resolves outside {self.root}")
        return path

    def get(self, run_id: str) -> Run:
        path = self._path_for(run_id)
        if not path.is_dir():
            hint = ""
            if self.root.is_dir():
                close = [p.name for p in self.root.iterdir() if p.is_dir() and run_id in p.name][:3]
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise RunError(f"no run {run_id!r} in {self.root}{hint}")
        return Run(path)

    def runs(self) -> Iterator[Run]:
        """Every run folder (not dot names), by name; one scandir (pathlib's iterdir and is_dir cost a second at ten
        thousand runs)."""
        try:
            with os.scandir(self.root) as it:
                names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_dir())
        except OSError:
            return
        # pathlib's own iterdir makes each child without parsing its name again (3.10-3.12; 3.13's / parses lazily)
        child = getattr(self.root, "_make_child_relpath", self.root.joinpath)
        for name in names:
            yield Run(child(name))

    def list(self) -> list[RunInfo]:
        """Every run, oldest first; damaged folders are listed as damaged, never raise."""
        self._remove_stale_creations()
        if not self.root.is_dir():
            return []
        from core.store.index import RunIndex  # (imports this module's RunInfo)

        return oldest_first(RunIndex(self.root).infos(self.runs()))

    def summary_lines(self) -> list[str]:
        """Every run's ``run_summary_row`` as a line of JSON, oldest first: what `runs` lists. Where the folder has
        an index, a run whose state no clock or other process can change is listed from the index's own line,
        without making its RunInfo (``RunIndex.lines``)."""
        self._remove_stale_creations()
        if not self.root.is_dir():
            return []
        from core.store.index import RunIndex

        return [line for _, line in sorted(RunIndex(self.root).lines(self.runs()), key=lambda entry: entry[0])]

    def delete(self, run_id: str) -> None:
        run = self.get(run_id)
        info = run.info()
        if info.state in ACTIVE:
            raise RunLockedError(f"run {run_id} is {info.state}; stop it before deleting")
        try:
            run.acquire_lock()          # held by a scheduler that is starting it right now
        except RunLockedError:
            raise RunLockedError(f"run {run_id} is starting in another process; stop it before deleting") from None
        except OSError:                 # a lock that is a link or a folder: nobody can hold it (the run is damaged)
            pass
        try:
            shutil.rmtree(run.path)
        finally:
            run.release_lock()


def extend_run(run: Run, epochs: int) -> RunConfig:
    """Make a run longer (``resume --epochs N``): rewrites config.json with the new length in epochs. The caller
    holds the run's lock: a refused resume must change nothing (another process may be training the run)."""
    if not run.holds_lock:
        raise RunError(f"extending run {run.id} needs its writer lock")
    cfg = run.read_config()
    new = cfg.with_overrides(epochs=epochs)
    if cfg.milestone_unit == "iter":
        new = new.with_overrides(milestone_unit="iter")
    errors = new.validate()
    if errors:
        raise ConfigError(errors)
    info = run.info()
    done = info.epochs_done
    if epochs <= done:
        raise ConfigError({"epochs": f"the run has already done {done} epochs; ask for more than {done}"})
    first = info.epochs[0] if info.epochs else {}
    per_epoch = first.get("step") if first.get("epoch") == 1 and isinstance(first.get("step"), int) else None
    atomic_write_bytes(run.config_path, new.to_json().encode())
    run.update_status(total_epochs=epochs, total_steps=per_epoch * epochs if per_epoch else None)
    run.log(f"extended to {epochs} epochs")
    return new
