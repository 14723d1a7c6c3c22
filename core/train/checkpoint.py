"""checkpoint.pt and best.pt: what they hold, written atomically, read back safely and checked.

checkpoint.pt is everything an exact resume needs: the objects below that have ``state_dict()``, every RNG, the
``TrainState`` and a few facts of the set-up. Each key is listed once, in ``KEYS``; ``save`` writes exactly
those and ``read_resumable`` refuses a file that lacks one or has a format this code does not know.

Nothing in it depends on the number of processes that trained (rank 0 writes it under DDP): the loader's
position counts global batches and its generator draws for the global batch, and ``micro_batches`` counts the
slices of the global batch. So a run stopped on N processes resumes exactly on any M that divides that count.
"""
from __future__ import annotations

import io
import os
from dataclasses import fields
from operator import attrgetter
from pathlib import Path
from typing import Any

import torch

from core.spec.config import RunConfig
from core.store.runs import now
from core.train.device import resolve_precision, rng_state, set_rng_state
from core.train.setup import Setup
from core.train.state import TrainState
from core.util.files import atomic_write_bytes, open_regular

CHECKPOINT_FORMAT = 2     # 2: TrainState's fields (epoch seconds carried); 1: positional epoch_sums, window_rows

# objects with state_dict()/load_state_dict(): the checkpoint's key -> where the Setup holds the object
PARTS = {"model": "model", "optimizer": "step.optimizer", "scaler": "step.scaler", "schedule": "schedule",
         "loader": "train_loader"}
SETUP_FACTS = ("config", "channels_last", "micro_batches", "precision")
KEYS = ("format", "saved_at", "rng", *SETUP_FACTS, *PARTS, *(f.name for f in fields(TrainState)))


class CheckpointError(ValueError):
    """A checkpoint this code cannot resume from; the message says why."""


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely: tensors and plain containers only (``weights_only=True``), never arbitrary pickles,
    and never through a symbolic link (NotAFileError)."""
    with os.fdopen(open_regular(Path(path), os.O_RDONLY), "rb") as fh:
        return torch.load(fh, map_location=map_location, weights_only=True)


def save(path: Path, setup: Setup, state: TrainState, best_path: Path | None = None) -> None:
    """Write checkpoint.pt (and best.pt, the weights alone, when ``best_path`` is given)."""
    ckpt: dict[str, Any] = {"format": CHECKPOINT_FORMAT, "saved_at": now(), "rng": rng_state(setup.device),
                            "config": setup.cfg.to_dict(), "channels_last": setup.step.channels_last,
                            "micro_batches": setup.step.micro_batches, "precision": setup.precision}
    ckpt.update({key: attrgetter(where)(setup).state_dict() for key, where in PARTS.items()})
    ckpt.update(state.to_dict())
    assert tuple(ckpt) == KEYS, "save() and KEYS disagree"
    _atomic_torch_save(ckpt, path)
    if best_path is not None:
        _atomic_torch_save({"model": ckpt["model"], "epoch": state.epoch, "test_err": state.best_test_err,
                            "config": ckpt["config"]}, best_path)


def read_resumable(path: Path) -> dict:
    """checkpoint.pt, checked: raises CheckpointError for an unknown format or missing keys (and whatever
    ``load_checkpoint`` raises for a file that is not a safe checkpoint)."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path.name} holds a {type(ckpt).__name__}, not a checkpoint")
    fmt = ckpt.get("format")
    if fmt == 1:
        ckpt = _from_format_1(ckpt)
    elif fmt != CHECKPOINT_FORMAT:
        newer = isinstance(fmt, int) and fmt > CHECKPOINT_FORMAT
        raise CheckpointError(f"{path.name} has format {fmt!r}, " + (
            f"newer than this ResLab reads ({CHECKPOINT_FORMAT}): update ResLab to resume it" if newer
            else f"which this ResLab does not know (it reads 1 to {CHECKPOINT_FORMAT})"))
    ckpt.setdefault("precision", None)      # written before precision was kept: precision_of decides
    missing = [k for k in KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path.name} lacks {', '.join(missing)}: it is damaged or was not written by ResLab")
    return ckpt


def read_for_resume(path: Path) -> dict:
    """``read_resumable`` for the trainer: any failure is a CheckpointError whose first line says what is wrong for a
    person, the rest (torch's own text, up to 40 lines) going to events.log."""
    try:
        return read_resumable(path)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}; the run cannot resume") from None
    except Exception as exc:  # noqa: BLE001 - whatever torch raises for a file that is not a safe checkpoint
        raise CheckpointError(f"{path.name} cannot be loaded ({type(exc).__name__}); the run cannot resume\n"
                              f"{exc}") from None


def restore(ckpt: dict, setup: Setup) -> TrainState:
    """Put a checked checkpoint back into a freshly built ``setup`` (and the global RNGs); returns the state."""
    for key, where in PARTS.items():
        if ckpt[key]:   # a disabled gradient scaler saves {}: nothing to restore
            attrgetter(where)(setup).load_state_dict(ckpt[key])
    set_rng_state(ckpt["rng"], setup.device)
    # more slices where the config asks more (the scheduler's retry after an out-of-memory), else the checkpoint's
    setup.set_micro_batches(max(int(ckpt["micro_batches"]), setup.cfg.micro_batches))
    return TrainState.from_dict(ckpt)


def precision_of(ckpt: dict, cfg: RunConfig, device: torch.device) -> str:
    """The precision a resumed run continues in: the checkpoint's, so that ``auto`` never changes in the middle of
    a run (a probe's answer may differ later); for a checkpoint that did not keep it, the rule of that time (fp32 on
    CPUs, bf16 on GPUs from compute capability 8.0)."""
    return ckpt.get("precision") or resolve_precision(cfg.precision, device)


def _from_format_1(ckpt: dict) -> dict:
    """Format 1 kept the epoch's sums and the pending rows positionally and not the epoch's seconds (taken as 0)."""
    ckpt = dict(ckpt)
    if "epoch_sums" in ckpt and "window_rows" in ckpt:
        loss_sum, wrong, images = ckpt.pop("epoch_sums")
        ckpt["sums"] = {"loss_sum": loss_sum, "wrong": wrong, "images": int(images), "seconds": 0.0}
        ckpt["pending"] = ckpt.pop("window_rows")
    ckpt["format"] = CHECKPOINT_FORMAT
    return ckpt


def _atomic_torch_save(obj: Any, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())
