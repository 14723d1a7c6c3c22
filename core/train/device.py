"""Devices, precision, random number generators, determinism and the run's environment record.

Shared by the trainer, ``eval`` (cli/evaluate.py) and the benchmark (bench/throughput.py), so all three pick the
same device for ``auto`` and refuse the same impossible requests with the same message. (Not to be confused with
core/serve/gpus.py: the device slots a scheduler places runs on, and live GPU readings.)
"""
from __future__ import annotations

import os
import platform
import random
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core import __version__
from core.spec.config import RunConfig

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(ValueError):
    """A device that does not exist or cannot be used here; the message says what to use instead."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA GPU if there is one, else the CPU; other names are checked against this machine.

    Raises DeviceError with a message that reads after "device " or "--device: " (callers add the prefix).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"{name!r} is not a device: use auto, cpu or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"{name} asked for, but no CUDA GPU is available here; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"{name} asked for, but only {torch.cuda.device_count()} GPU(s) exist here")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def sync_device(device: torch.device) -> None:
    """Wait for the device (a no-op on the CPU); only for timing and epoch ends, never per iteration."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device) -> dict[str, Any]:
    """What is needed to rerun a run: versions, device, host, git commit."""
    env = {
        "reslab": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "numpy": np.__version__, "cuda": torch.version.cuda, "cudnn": None, "host": socket.gethostname(),
        "device": str(device), "device_name": platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(), "git_commit": _git_commit(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        git = ["git", "--no-optional-locks", "-C", str(root)]     # never rewrite .git/index of the checkout
        out = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


# -- determinism and random number generators -------------------------------------------------------------------------
def set_determinism(cfg: RunConfig, device: torch.device) -> None:
    torch.backends.cudnn.benchmark = device.type == "cuda" and not cfg.deterministic
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    if cfg.deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every global RNG's state as tensors and plain containers (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x
