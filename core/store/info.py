"""What a list shows about one run (``RunInfo``), read through core/store/reader.py, and the one order of run lists.

``Run.info()`` (core/store/runs.py) calls ``RunInfo.read``: it is the one place where a folder that cannot be read
becomes a "damaged" run (with ``repairable`` set when ``resume --repair`` can rebuild it from checkpoint.pt), and
where a run that says "running" but whose process is gone becomes "crashed".
"""
from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.spec.config import RunConfig
from core.store import reader
from core.store.checkpoint_check import FIX_HINT, checkpoint_problem
from core.store.notes import read_notes
from core.store.reader import DamagedFileError
from core.store.rules import ACTIVE, CONTINUES_AS_IS
from core.util.formatting import slurm_text

STATES = ("queued", "running", "paused", "stopped", "finished", "failed", "diverged", "out-of-memory",
          "crashed", "damaged")
STALE_AFTER_S = 120.0                        # a heartbeat older than this on another host means crashed
REPAIR_HINT = "resume --repair can recover it from checkpoint.pt"
RESTART_HINT = "resume --repair starts it over from step 0 (its records are dropped), or start a new run"
QUEUE_LOST_AFTER_S = 30.0                    # a queued run without queue.json nobody has locked this long is lost
UNQUEUED_HINT = "the queue cannot start it: resume it by hand (resume RUN), or delete it"


@dataclass
class RunInfo:
    """What a list or table shows about one run. ``state`` folds in crash detection and damage."""

    id: str
    path: Path
    state: str
    config: RunConfig | None = None
    status: dict = field(default_factory=dict)
    # epochs.jsonl's rows; None for a run listed from the index (core/store/index.py), whose row keeps only ``tally``:
    # ``epochs`` reads the file when first asked (a report's curves, a run's screen), never for a table
    _epochs: list[dict] | None = field(default_factory=list, repr=False)
    damaged: str = ""
    repairable: bool = False    # damaged, but `resume --repair` can rebuild what is wrong from checkpoint.pt
    job: dict = field(default_factory=dict)      # slurm.json, for a run sent to Slurm (core/serve/slurm.py)
    unqueued: bool = False      # damaged only in that its queue.json is: `resume` trains it as it is
    restartable: bool = False   # damaged in that its checkpoint.pt is gone: `resume --repair` starts it over
    tally: dict | None = field(default=None, repr=False, compare=False)   # ``epoch_tally`` of unread epochs
    notes: dict | None = field(default=None, repr=False)    # notes.json's tags and note (None: not read)
    # what views work out from the run and keep while it is the same RunInfo (a reader makes a new one when it reads
    # the run again): a filter's words (core/store/query.py), its seed group (core/results/groups.py)
    memo: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def read(cls, run: Any) -> RunInfo:   # a core.store.runs.Run (not imported: runs imports this module)
        return settle(cls.read_files(run), run)

    @classmethod
    def read_files(cls, run: Any) -> RunInfo:
        """What the run's files say, before ``settle``: what core/store/index.py caches."""
        info = cls._read_files(run)
        info.notes = read_notes(run.path)       # (the runs filter's tag= and note=: never read on the app's loop)
        return info

    @classmethod
    def _read_files(cls, run: Any) -> RunInfo:
        why = reader.folder_problem(run.path)
        if why:
            return cls(run.id, run.path, "damaged", damaged=why)
        config, status, epochs = None, None, []
        try:
            config = run.read_config()
            status = run.read_status()
            epochs = run.read_epochs()
            state = status["state"]
            if state not in STATES:
                raise DamagedFileError(f"status.json has an unknown state {reader.short(state)}")
        except FileNotFoundError as exc:
            why = f"{Path(exc.filename or '?').name} is missing"
        except DamagedFileError as exc:
            why = str(exc)
        except PermissionError as exc:      # another user's run in a shared runs folder, without read rights
            why = f"{Path(exc.filename or '?').name} is not readable by you ({exc.strerror}): ask its owner, or " \
                  f"share the runs folder (docs/guarantees.md)"
        except OSError as exc:
            why = f"{Path(exc.filename or '?').name} cannot be read ({exc.strerror or exc})"
        if why:
            return cls(run.id, run.path, "damaged", config, status or {}, epochs, damaged=why,
                       repairable=reader.checkpoint_looks_whole(run.checkpoint_path))
        if state not in ACTIVE:     # a live trainer's checkpoint is its own; a foreign or mismatched one is damage
            why, fixable = checkpoint_problem(run.checkpoint_path, config, status, epochs)
            if why:
                return cls(run.id, run.path, "damaged", config, status, epochs, damaged=why.removesuffix(
                    f"; {FIX_HINT}"), repairable=fixable)
        return cls(run.id, run.path, state, config, status, epochs, job=run.read_job())

    @property
    def epochs(self) -> list[dict]:
        if self._epochs is None:
            try:
                self._epochs = reader.read_rows(self.path / "epochs.jsonl")[0]
            except (OSError, ValueError):       # changed since its row was read: the next listing will say so
                self._epochs = []
        return self._epochs

    @epochs.setter
    def epochs(self, rows: list[dict]) -> None:
        self._epochs, self.tally = rows, None

    def _tallied(self, key: str) -> Any:
        """A figure of the epochs: the row's tally when listed from the index (the rows read later, for a screen's
        curves, may not change what its table shows), else of the rows."""
        if self.tally:
            return self.tally[key]
        return _TALLY[key](self.epochs)

    # derived figures (None where unknown)
    @property
    def epoch_count(self) -> int:
        """How many rows epochs.jsonl holds (without reading it for an indexed run)."""
        return self._tallied("count")

    @property
    def epochs_done(self) -> int:
        epoch = self.status.get("epoch")
        return int((self.epoch_count if epoch is None else epoch) or 0)

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
        return self._tallied("final_test_err")

    @property
    def best_test_err(self) -> float | None:
        return self._tallied("best_test_err")

    @property
    def epoch_s(self) -> float | None:
        """The last epoch's seconds."""
        return self._tallied("epoch_s")

    @property
    def paper_err(self) -> float | None:
        return self.config.paper_error if self.config else None

    @property
    def duration_s(self) -> float | None:
        return self.status.get("elapsed_s")

    @property
    def error(self) -> str:
        """Why the run is damaged, failed, diverged ...; control characters escaped (it is shown on terminals)."""
        if self.damaged:
            hint = f"; {REPAIR_HINT}" if self.repairable else f"; {RESTART_HINT}" if self.restartable else ""
            return reader.escape_controls(self.damaged + hint)
        return reader.escape_controls(self.status.get("error") or "")

    @property
    def checkpoint_lost(self) -> bool:
        """The run has trained, yet its checkpoint.pt is gone (``lost_checkpoint``): it cannot continue."""
        return bool(lost_checkpoint("stopped", self.status, self.epoch_count, self.path / "checkpoint.pt"))

    @property
    def images_per_s(self) -> float | None:
        return self.status.get("images_per_s")

    @property
    def phase(self) -> str | None:
        """What a running run is doing before its first step: "compiling" (status.json ``compiling``, written by the
        trainer's warm-up compile, core/train/trainer.py); None otherwise."""
        return "compiling" if self.state == "running" and self.status.get("compiling") is True else None

    @property
    def progress(self) -> float:
        """Fraction of the run done, 0..1."""
        total = self.total_steps
        if total:
            return min(1.0, self.step / total)
        te = self.total_epochs
        return min(1.0, self.epochs_done / te) if te else 0.0


_TALLY = {
    "count": len,
    "final_test_err": lambda rows: rows[-1].get("test_err") if rows else None,
    "best_test_err": lambda rows: min((e["test_err"] for e in rows if e.get("test_err") is not None), default=None),
    "epoch_s": lambda rows: rows[-1].get("seconds") if rows else None,
}


def epoch_tally(epochs: list[dict]) -> dict[str, Any]:
    """What lists and tables need of epochs.jsonl's rows: an indexed run keeps only this."""
    return {key: figure(epochs) for key, figure in _TALLY.items()}


def settle(info: RunInfo, run: Any) -> RunInfo:
    """What no file says, decided now: a run that says it trains but whose process is gone is crashed; a queued run
    that is in no queue is damaged (``unqueued``); so is one that has trained but lost its checkpoint.pt
    (``restartable``), or whose steps.jsonl is larger than ResLab reads (``repairable``)."""
    if info.state in ACTIVE and not owner_alive(run, info.status):
        info.state = "crashed"
    elif info.state == "queued":
        lost = _queue_problem(run, info.status)
        if lost:
            info.state, info.damaged, info.unqueued = "damaged", f"{lost}; {UNQUEUED_HINT}", True
    if gone := lost_checkpoint(info.state, info.status, info.epoch_count, run.checkpoint_path):
        info.state, info.damaged, info.restartable = "damaged", gone, True
    elif info.state not in ACTIVE and (big := reader.steps_too_large(run.steps_path)):   # (steps.jsonl: never cached)
        info.state, info.damaged, info.repairable = "damaged", big, True
    return info


def lost_checkpoint(state: str, status: dict, epochs: int, checkpoint_path: Path) -> str:
    """Why a run that has trained cannot continue ("" when it can): it finished an epoch (each ends with a checkpoint)
    or was stopped mid-epoch (a stop saves one), yet checkpoint.pt is gone. Resuming would start it over from step 0
    and cut its records back: only `resume --repair` (asked for) does that. A finished run keeps its state (its
    numbers stand); only making it longer needs the checkpoint (core/store/rules.py). ``epochs``: how many rows
    epochs.jsonl holds."""
    if state not in CONTINUES_AS_IS or checkpoint_path.exists() or checkpoint_path.is_symlink():
        return ""
    epoch, step = status.get("epoch") or 0, status.get("step") or 0
    # status.json's epoch is written after the epoch's checkpoint, and a second epoch row after the first checkpoint;
    # a single row without one is a kill between that row and its checkpoint: starting over loses nothing saved
    if not (epoch > 0 or epochs > 1 or state == "stopped" and step > 0):
        return ""        # it never saved a checkpoint (a crash in its first epoch): starting over loses nothing
    done = max(epoch, epochs)
    return f"checkpoint.pt is missing, though the run has trained ({done} epoch{'s' if done != 1 else ''} done, " \
           f"step {step})"


def owner_alive(run: Any, status: dict) -> bool:
    """Is the process that says it trains this run still there? On this host its writer lock tells (the kernel
    drops a flock when the process dies, however it dies); elsewhere only the heartbeat's age can."""
    if status.get("host") == socket.gethostname():
        return run.is_locked()
    updated = status.get("updated_at")
    return isinstance(updated, (int, float)) and time.time() - updated < STALE_AFTER_S


def _queue_problem(run: Any, status: dict) -> str:
    """Why a queued run is in no queue ("" when it is, or is about to be trained by the process that created it):
    its queue.json is damaged, or missing although the queue made it (status ``in_queue``) and nobody has locked the
    run for QUEUE_LOST_AFTER_S. `train` and the app create queued runs without queue.json: `train` locks its run at
    once, the app's own queue holds its runs unlocked until their turn (a grid waits there for hours)."""
    try:
        reader.read_queue_entry(run.path / "queue.json")
    except FileNotFoundError:
        updated = status.get("updated_at")
        if not status.get("in_queue") or run.is_locked() or not isinstance(updated, (int, float)) \
                or time.time() - updated < QUEUE_LOST_AFTER_S:
            return ""
        return "queued, but queue.json is missing and no process trains it"
    except (OSError, ValueError) as exc:
        return str(exc)
    return ""


def order_key(info: RunInfo) -> tuple[float, str]:
    """Where a run comes in every run list: by creation time, then id."""
    value = info.status.get("created_at")
    return (float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0), info.id


def oldest_first(infos: Iterable[RunInfo]) -> list[RunInfo]:
    """The order of every run list: by creation time, then id."""
    return sorted(infos, key=order_key)


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
        "arch": cfg.arch if cfg else None,
        "model": cfg.net_name() if cfg else None,        # 'PreAct-164', 'ResNet-20 30/60/90 stem 64'
        "epochs_done": info.epochs_done if cfg else None,
        "total_epochs": info.total_epochs,
        "final_test_err": info.final_test_err,
        "best_test_err": info.best_test_err,
        "paper_err": info.paper_err,
        "status": info.state,
        "phase": info.phase,
        "world_size": world if isinstance(world := info.status.get("world_size"), int) and world > 1 else 1,
        "slurm": slurm_text(info.job),
        "duration_s": info.duration_s,
        "images_per_s": info.images_per_s,
        "epoch_s": info.epoch_s,
        "peak_mem_bytes": info.status.get("peak_mem_bytes"),
        "error": info.error,
    }
