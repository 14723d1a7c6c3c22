"""Does checkpoint.pt belong to its run? The settings it was saved with against config.json, its epoch and step
against the run's records: the rules (core/train/consistency.py applies them before a resume), and a look at a
checkpoint's header without torch, so `runs` lists a run whose checkpoint.pt is foreign or mismatched as damaged.

``read_header`` reads only ``data.pkl`` of the torch zip archive (the pickled dict: config, epoch, step, and the
tensors as references into the archive's other files, which are never read): a few kilobytes, no torch import.
"""
from __future__ import annotations

import collections
import logging
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

from core.spec.config import RunConfig
from core.store.reader import open_regular
from core.util.formatting import number_text

log = logging.getLogger(__name__)

HEADER_FORMAT = 2           # core/train/checkpoint.py CHECKPOINT_FORMAT: an older or newer one is the trainer's to read


# settings a resumed run may change: they apply from the resume on (events.log says which differ)
MAY_CHANGE = frozenset({
    "lr", "momentum", "weight_decay", "beta1", "beta2", "eps", "dropout", "augment", "milestones", "milestone_unit",
    "lr_factor", "min_lr", "warmup_iters", "error_warmup", "epochs", "iterations", "precision", "channels_last",
    "compile", "on_oom", "micro_batches", "sync_bn", "device", "deterministic", "name", "sweep_name", "log_every",
    "tensorboard", "data_dir", "download"})


FIX_HINT = "resume --repair puts checkpoint.pt's values back into config.json"


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float):
        return number_text(value) if abs(value) >= 1e15 else f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def differences(cfg: RunConfig, saved: dict) -> tuple[list[str], list[str]]:
    """(fields that must match but do not, fields that may change and do): each 'depth 20 in config.json, 8 in
    checkpoint.pt'. A field checkpoint.pt lacks (saved by an older ResLab) is taken as matching."""
    now = cfg.to_dict()
    must, may = [], []
    for name, value in now.items():
        if name not in saved:
            continue
        old = saved[name]
        if (list(old) if isinstance(old, (list, tuple)) else old) == value:
            continue
        line = f"{name} {_text(value)} in config.json, {_text(old)} in checkpoint.pt"
        (may if name in MAY_CHANGE else must).append(line)
    return must, may


def position_problem(ckpt: dict, status: dict, epochs: list[dict]) -> str:
    """'' when the checkpoint's epoch and step are ones this run's records can have reached; else why not. Rows
    are appended before each checkpoint and status.json is written after it, so the checkpoint is never further
    than the furthest of the two."""
    epoch, step = ckpt.get("epoch"), ckpt.get("step")
    if not (type(epoch) is int and type(step) is int and epoch >= 0 and step >= 0):
        return f"checkpoint.pt says epoch {_text(epoch)}, step {_text(step)}, which no run reaches"
    reached = max([status.get("epoch") or 0] + [r.get("epoch") or 0 for r in epochs])
    if epoch > reached:
        return (f"checkpoint.pt says epoch {epoch}, but the run's records end at epoch {reached}: it was not saved "
                f"by this run, or was edited")
    per, total = status.get("iters_per_epoch"), status.get("total_steps")
    if not (isinstance(per, int) and per > 0):
        return ""
    lo, hi = epoch * per, (epoch + 1) * per
    if isinstance(total, int) and total > 0:     # an iteration budget ends inside its last epoch (64,000 = 163.7 x 391)
        lo, hi = min(lo, total), min(hi, total)
    if not lo <= step <= hi:
        return f"checkpoint.pt says step {step}, outside its epoch {epoch + 1} (iterations {lo}-{hi}): it was not " \
               f"saved by this run, or was edited"
    return ""


def check(cfg: RunConfig, ckpt: dict, status: dict, epochs: list[dict]) -> tuple[str, list[str]]:
    """(why this run cannot resume from ``ckpt`` as it stands, or ''; the notes for events.log on what changes)."""
    if why := position_problem(ckpt, status, epochs):
        return f"{why}; it cannot be resumed: start a new run", []
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        return "", []
    must, may = differences(cfg, saved)
    if must:
        return (f"config.json differs from the settings checkpoint.pt was saved with ({'; '.join(must)}); "
                f"{FIX_HINT}"), []
    return "", ([f"settings changed since checkpoint.pt was saved (they apply from here on): {'; '.join(may)}"]
                if may else [])


class _Opaque:
    """Whatever the pickle rebuilds that is not plain data (a tensor, a storage, a torch.Size): a placeholder."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


class _HeaderUnpickler(pickle.Unpickler):
    """Plain data as it is, every other class a placeholder: nothing of the file is executed or loaded."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        return _nothing if name.startswith("_rebuild") else _Opaque     # a tensor: a function is twice as fast

    def persistent_load(self, pid):
        return None


def _nothing(*args, **kwargs) -> None:
    return None


_SEEN: dict[tuple, dict | None] = {}     # (path, inode, size, mtime) -> header: an app polling reads each file once


def read_header(path: Path) -> dict | None:
    """checkpoint.pt's plain fields (config, epoch, step, format...) without torch; None when it is missing, not a
    torch zip archive of a dict, or cannot be read (the trainer and `resume` say why). ~1/13 of a torch.load."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in _SEEN:
            if len(_SEEN) > 4096:
                _SEEN.clear()
            _SEEN[key] = _read_header(fh)
        return _SEEN[key]


_LOCAL = struct.Struct("<IHHHHHIIIHH")     # a zip local file header (30 bytes), up to the name's and extra's lengths


def _first_record(fh) -> object:
    """The pickle of the archive's first record when it is data.pkl, stored (torch.save writes it first): read from
    its local header, without the central directory (zipfile reads all of it, ~1 ms per checkpoint; the pickle ends
    itself). _NOT_FIRST when the file is laid out otherwise."""
    head = fh.read(_LOCAL.size)
    if len(head) < _LOCAL.size:
        return _NOT_FIRST
    signature, _, _, method, *_, name_len, extra_len = _LOCAL.unpack(head)
    if signature != 0x04034B50 or method != 0 or not fh.read(name_len).endswith(b"/data.pkl"):
        return _NOT_FIRST
    fh.seek(_LOCAL.size + name_len + extra_len)
    return _HeaderUnpickler(fh).load()


_NOT_FIRST = object()


def _read_header(fh) -> dict | None:
    try:
        data = _first_record(fh)
        if data is not _NOT_FIRST:
            return data if isinstance(data, dict) else None
    except Exception:
        log.debug("checkpoint header: not in the archive's first record", exc_info=True)
    try:
        fh.seek(0)
        with zipfile.ZipFile(fh) as archive:
            name = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
            if name is None:
                return None
            with archive.open(name) as pkl:
                data = _HeaderUnpickler(pkl).load()
    except Exception:
        log.debug("checkpoint header cannot be read", exc_info=True)
        return None
    return data if isinstance(data, dict) else None


def checkpoint_problem(path: Path, cfg: RunConfig, status: dict, epochs: list[dict]) -> tuple[str, bool]:
    """(why checkpoint.pt does not belong to this run as it stands, or ''; whether `resume --repair` fixes it)."""
    header = read_header(path)
    if header is None or header.get("format") != HEADER_FORMAT:
        return "", False
    why, _ = check(cfg, header, status, epochs)
    return why, why.endswith(FIX_HINT)
