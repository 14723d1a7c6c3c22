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
    lock           flock'ed by the one process that trains the run (core/lock.py)
    queue.json     the run's place in the queue and where the scheduler placed it (core/queue.py)
    process.log    output of a detached trainer process (core/launch.py)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .config import RunConfig
from .files import atomic_write_bytes, atomic_write_json, read_jsonl
from .lock import FileLock, LockHeldError

STATES = ("queued", "running", "paused", "stopped", "finished", "failed", "diverged", "out-of-memory",
          "crashed", "damaged")
ACTIVE = ("running", "paused")               # a live process owns the run
RESUMABLE = ("queued", "stopped", "crashed", "failed")
HEARTBEAT_S = 2.0                            # the trainer rewrites status.json at least this often
STALE_AFTER_S = 120.0                        # a heartbeat older than this on another host means crashed
_ID_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class RunError(Exception):
    """A run that does not exist, a bad run name, or a run that cannot do what was asked."""


class RunLockedError(RunError):
    """Another process is training this run."""


def now() -> float:
    return time.time()


def iso(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now() if t is None else t))


# -- one run -------------------------------------------------------------------------------------------------------------
class Run:
    """A run folder. Cheap to create; reads files on demand."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.id = self.path.name
        self._lock = FileLock(self.path / "lock")

    # paths
    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    epochs_path = property(lambda self: self.path / "epochs.jsonl")
    steps_path = property(lambda self: self.path / "steps.jsonl")
    checkpoint_path = property(lambda self: self.path / "checkpoint.pt")
    best_path = property(lambda self: self.path / "best.pt")
    events_path = property(lambda self: self.path / "events.log")
    request_path = property(lambda self: self.path / "request")
    lock_path = property(lambda self: self.path / "lock")

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # config / status
    def read_config(self) -> RunConfig:
        return RunConfig.from_json(self.config_path.read_text())

    def read_status(self) -> dict:
        return json.loads(self.status_path.read_text())

    def write_status(self, status: dict) -> None:
        atomic_write_json(self.status_path, status)

    def update_status(self, **fields: Any) -> dict:
        try:
            status = self.read_status()
        except (FileNotFoundError, json.JSONDecodeError):
            status = {}
        status.update(fields)
        self.write_status(status)
        return status

    # logs
    def read_epochs(self) -> list[dict]:
        return read_jsonl(self.epochs_path)

    def read_steps(self) -> list[dict]:
        return read_jsonl(self.steps_path)

    def append_jsonl(self, path: Path, rows: list[dict]) -> None:
        if not rows:
            return
        with open(path, "a") as fh:
            fh.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
            fh.flush()

    def append_epoch(self, row: dict) -> None:
        self.append_jsonl(self.epochs_path, [row])

    def append_steps(self, rows: list[dict]) -> None:
        self.append_jsonl(self.steps_path, rows)

    def log(self, message: str) -> None:
        with open(self.events_path, "a") as fh:
            fh.write(f"{iso()}  {message}\n")

    def read_events(self, tail: int | None = None) -> list[str]:
        try:
            lines = self.events_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return lines[-tail:] if tail else lines

    def truncate_logs(self, epochs_done: int, step: int) -> None:
        """Cut epochs.jsonl and steps.jsonl back to a checkpoint (epochs <= epochs_done, steps <= step)."""
        for path, keep in ((self.epochs_path, lambda r: r.get("epoch", 0) <= epochs_done),
                           (self.steps_path, lambda r: r.get("step", 0) <= step)):
            if path.exists():
                rows = [r for r in read_jsonl(path) if keep(r)]
                atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode())

    # requests from other processes
    def request(self, action: str) -> None:
        """Ask the process training this run to 'stop', 'pause' or 'continue' (between iterations)."""
        if action not in ("stop", "pause", "continue"):
            raise ValueError(f"unknown request {action!r}")
        atomic_write_bytes(self.request_path, action.encode())

    def read_request(self) -> str | None:
        try:
            return self.request_path.read_text().strip() or None
        except FileNotFoundError:
            return None

    def clear_request(self) -> None:
        try:
            self.request_path.unlink()
        except FileNotFoundError:
            pass

    # the writer lock (core/lock.py; a scheduler hands it to the trainer process it starts)
    def acquire_lock(self) -> None:
        """Become the one writer (or adopt the lock a scheduler handed over). RunLockedError: another has it."""
        if self._lock.adopt_inherited():
            return
        try:
            self._lock.acquire()
        except LockHeldError:
            raise RunLockedError(f"run {self.id} is being trained by another process") from None

    def adopt_lock(self) -> bool:
        """True when this process holds the run's lock because a scheduler handed it over."""
        return self._lock.adopt_inherited()

    def release_lock(self) -> None:
        self._lock.release()

    def is_locked(self) -> bool:
        """True when some process (this one included) holds the writer lock."""
        return self._lock.is_locked()

    # summary
    def info(self) -> "RunInfo":
        """What lists show about the run. A folder that cannot be read or summarised is a damaged run, never an
        exception: one bad folder must not hide the others from any list."""
        try:
            info = RunInfo.read(self)
            run_summary_row(info)  # e.g. a status.json whose "epoch" is not a number
            return info
        except Exception as exc:  # noqa: BLE001
            return RunInfo(self.id, self.path, "damaged", damaged=f"{type(exc).__name__}: {exc}")


@dataclass
class RunInfo:
    """What a list or table shows about one run. ``state`` folds in crash detection and damage."""

    id: str
    path: Path
    state: str
    config: RunConfig | None = None
    status: dict = field(default_factory=dict)
    epochs: list[dict] = field(default_factory=list)
    damaged: str = ""

    @classmethod
    def read(cls, run: Run) -> "RunInfo":
        try:
            config = run.read_config()
        except FileNotFoundError:
            return cls(run.id, run.path, "damaged", damaged="config.json is missing")
        except (ValueError, TypeError) as exc:
            return cls(run.id, run.path, "damaged", damaged=f"config.json is unreadable ({exc})")
        try:
            status = run.read_status()
            if not isinstance(status, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            return cls(run.id, run.path, "damaged", config, damaged="status.json is missing")
        except ValueError as exc:
            return cls(run.id, run.path, "damaged", config, damaged=f"status.json is unreadable ({exc})")
        try:
            epochs = run.read_epochs()
        except (ValueError, OSError) as exc:
            return cls(run.id, run.path, "damaged", config, status, damaged=str(exc))
        state = status.get("state", "damaged")
        if state not in STATES:
            return cls(run.id, run.path, "damaged", config, status, epochs, damaged=f"unknown state {state!r}")
        if state in ACTIVE and not _owner_alive(run, status):
            state = "crashed"
        return cls(run.id, run.path, state, config, status, epochs)

    # derived figures (None where unknown)
    @property
    def epochs_done(self) -> int:
        return int(self.status.get("epoch", len(self.epochs)) or 0)

    @property
    def total_epochs(self) -> int | None:
        return self.status.get("total_epochs") or (self.config.epochs if self.config else None)

    @property
    def step(self) -> int:
        return int(self.status.get("step", 0) or 0)

    @property
    def total_steps(self) -> int | None:
        return self.status.get("total_steps")

    @property
    def final_test_err(self) -> float | None:
        return self.epochs[-1].get("test_err") if self.epochs else None

    @property
    def best_test_err(self) -> float | None:
        errs = [e["test_err"] for e in self.epochs if e.get("test_err") is not None]
        return min(errs) if errs else None

    @property
    def paper_err(self) -> float | None:
        return self.config.paper_error if self.config else None

    @property
    def duration_s(self) -> float | None:
        return self.status.get("elapsed_s")

    @property
    def error(self) -> str:
        return self.damaged or self.status.get("error") or ""

    @property
    def images_per_s(self) -> float | None:
        return self.status.get("images_per_s")

    @property
    def progress(self) -> float:
        """Fraction of the run done, 0..1."""
        total = self.total_steps
        if total:
            return min(1.0, self.step / total)
        te = self.total_epochs
        return min(1.0, self.epochs_done / te) if te else 0.0


def live_state(run: Run) -> str:
    """The state from status.json and the lock alone (epochs are not read): what a scheduler polls."""
    try:
        status = run.read_status()
        state = status["state"] if status.get("state") in STATES else "damaged"
    except (OSError, ValueError, AttributeError):
        return "damaged"
    return "crashed" if state in ACTIVE and not _owner_alive(run, status) else state


def _owner_alive(run: Run, status: dict) -> bool:
    """Is the process that says it trains this run still there? On this host its writer lock tells (the kernel
    drops a flock when the process dies, however it dies); elsewhere only the heartbeat's age can."""
    if status.get("host") == socket.gethostname():
        return run.is_locked()
    return now() - float(status.get("updated_at", 0) or 0) < STALE_AFTER_S


# -- the store -----------------------------------------------------------------------------------------------------------
def default_runs_dir() -> Path:
    return Path(os.environ.get("RESLAB_RUNS") or "runs")


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
        return f"r{cfg.depth}-{sc}{wide}-{cfg.optimizer}-{time.strftime('%Y%m%d-%H%M%S')}"

    def create(self, cfg: RunConfig, state: str = "queued") -> Run:
        """Make a new run folder (unique id; a -2, -3... suffix on collision) with config.json and status.json."""
        self.root.mkdir(parents=True, exist_ok=True)
        base = self.make_id(cfg)
        for i in range(1, 1000):
            run_id = base if i == 1 else f"{base}-{i}"
            try:
                (self.root / run_id).mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover
            raise RunError(f"cannot find a free run id near {base}")
        run = Run(self.root / run_id)
        atomic_write_bytes(run.config_path, cfg.to_json().encode())
        run.write_status({"state": state, "created_at": now(), "updated_at": now(), "epoch": 0, "step": 0,
                          "host": socket.gethostname()})
        run.log(f"created {cfg.label()}")
        return run

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
        if not self.root.is_dir():
            return
        for p in sorted(self.root.iterdir()):
            if p.is_dir() and not p.name.startswith("."):
                yield Run(p)

    def list(self) -> list[RunInfo]:
        """Every run, oldest first; damaged folders are listed as damaged, never raise."""
        return oldest_first(run.info() for run in self.runs())

    def delete(self, run_id: str) -> None:
        run = self.get(run_id)
        info = run.info()
        if info.state in ACTIVE:
            raise RunLockedError(f"run {run_id} is {info.state}; stop it before deleting")
        try:
            run.acquire_lock()          # held by a scheduler that is starting it right now
        except RunLockedError:
            raise RunLockedError(f"run {run_id} is starting in another process; stop it before deleting") from None
        try:
            shutil.rmtree(run.path)
        finally:
            run.release_lock()


def oldest_first(infos: Iterable[RunInfo]) -> list[RunInfo]:
    """The order of every run list: by creation time, then id."""
    return sorted(infos, key=lambda i: (float(i.status.get("created_at", 0) or 0), i.id))


def run_summary_row(info: RunInfo) -> dict[str, Any]:
    """The columns every run list shows (CLI `runs`, the TUI table), as plain values."""
    cfg = info.config
    return {
        "id": info.id,
        "depth": cfg.depth if cfg else None,
        "shortcut": cfg.shortcut if cfg else None,
        "width": cfg.width if cfg else None,
        "optimizer": cfg.optimizer if cfg else None,
        "schedule": cfg.schedule if cfg else None,
        "epochs_done": info.epochs_done if cfg else None,
        "total_epochs": info.total_epochs,
        "final_test_err": info.final_test_err,
        "best_test_err": info.best_test_err,
        "paper_err": info.paper_err,
        "status": info.state,
        "duration_s": info.duration_s,
        "images_per_s": info.images_per_s,
        "epoch_s": info.epochs[-1].get("seconds") if info.epochs else None,
        "peak_mem_bytes": info.status.get("peak_mem_bytes"),
        "error": info.error,
    }
