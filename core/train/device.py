"""Devices, precision, random number generators, determinism and the run's environment record.

Shared by the trainer, ``eval`` (cli/evaluate.py) and the benchmark (bench/throughput.py), so all three pick the
same device for ``auto`` and refuse the same impossible requests with the same message. (Not to be confused with
core/serve/gpus.py: the device slots a scheduler places runs on, and live GPU readings.)
"""
from __future__ import annotations

import gc
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
from core.util.env import MEMORY_FRACTION_ENV, SHARED_ENV

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
    """``auto`` -> bf16 on GPUs with native bf16 (compute capability 8.0 and up: A100, H100, RTX 30xx...), else fp32.

    Not ``torch.cuda.is_bf16_supported()``: it is true on V100 and T4 too, where bf16 is emulated and slower than
    fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda" and native_bf16(torch.cuda.get_device_capability(device)):
        return "bf16"
    return "fp32"


def precision_note(precision: str, device: torch.device) -> str | None:
    """A warning for bf16 asked for on a GPU that only emulates it (compute capability below 8.0: slower than
    fp32), else None."""
    if precision == "bf16" and device.type == "cuda":
        capability = torch.cuda.get_device_capability(device)
        if not native_bf16(capability):
            return (f"warning: bf16 on a GPU of compute capability {capability[0]}.{capability[1]} is emulated and "
                    f"slower than fp32 (native from 8.0); --precision auto picks fp32 here")
    return None


def native_bf16(capability: tuple[int, int]) -> bool:
    """Tensor cores that compute in bf16: compute capability 8.0 (Ampere) and up."""
    return tuple(capability) >= (8, 0)


def use_device(device: torch.device) -> None:
    """Make ``device`` this process's current CUDA device (a no-op elsewhere). The trainer calls it before it builds
    anything: events, streams, ``empty_cache()`` and the kernels of libraries that use the current device (cuDNN,
    cuBLAS workspaces) then all belong to the run's GPU, also on cuda:N with N >= 1."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        fraction = memory_fraction()
        if fraction is not None:
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(shared_fraction(fraction, total), device)


CONTEXT_BYTES = 768 * 2**20     # what a CUDA context (with cuDNN and cuBLAS loaded) takes outside the allocator's share


def shared_fraction(fraction: float, total_bytes: int) -> float:
    """The allocator's share for a process that may take ``fraction`` of a GPU of ``total_bytes``: less each
    process's CUDA context, which the fraction does not cover (N processes at exactly 1/N each left no room for
    their N contexts: the last to allocate ran out of memory)."""
    if fraction >= 1:
        return fraction
    return max(0.02, fraction - CONTEXT_BYTES / max(total_bytes, 1))


def gpu_sharing() -> int:
    """How many runs share this process's GPU (1 unless a scheduler with --per-device N started it)."""
    try:
        return max(1, int(os.environ.get(SHARED_ENV) or 1))
    except ValueError:
        return 1


def memory_fraction() -> float | None:
    """The share of its GPU's memory this process may take (``$RESLAB_MEMORY_FRACTION``, 0 < f <= 1), or None."""
    try:
        fraction = float(os.environ.get(MEMORY_FRACTION_ENV) or 0)
    except ValueError:
        return None
    return fraction if 0 < fraction <= 1 else None


def total_memory(device: torch.device) -> int | None:
    """The memory a run on ``device`` can use at most: the GPU's, or this machine's RAM for the CPU; None unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        if device.type == "cpu":
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (OSError, ValueError, RuntimeError, AssertionError):
        pass
    return None


def sync_device(device: torch.device) -> None:
    """Wait for the device (a no-op on the CPU); only for timing and epoch ends, never per iteration."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_memory_figures(device: torch.device) -> None:
    """Start a new measurement of the peaks ``memory_figures`` reads (at each epoch's start)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def memory_figures(device: torch.device) -> dict[str, int | None]:
    """The device memory peaks since ``reset_memory_figures``: allocated by tensors (``peak_mem_bytes``) and
    reserved by the caching allocator (``reserved_mem_bytes``, what the GPU lacks for other processes); None off the
    GPU."""
    if device.type != "cuda":
        return {"peak_mem_bytes": None, "reserved_mem_bytes": None}
    return {"peak_mem_bytes": torch.cuda.max_memory_allocated(device),
            "reserved_mem_bytes": torch.cuda.max_memory_reserved(device)}


# allocation failures of CUDA libraries: they arrive as RuntimeError, not torch.OutOfMemoryError
_ALLOC_FAILURES = ("CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_NOT_INITIALIZED",
                   "CUSOLVER_STATUS_ALLOC_FAILED", "CUFFT_ALLOC_FAILED", "CUDA out of memory",
                   "CUDA error: out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Did the device run out of memory? ``torch.OutOfMemoryError``, or a cuDNN/cuBLAS allocation failure (cuBLAS
    says NOT_INITIALIZED when it cannot allocate its handle's workspace)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(word in str(exc) for word in _ALLOC_FAILURES)


def release_memory(device: torch.device) -> None:
    """Give the memory of a failed step back to the driver: call it after the ``except`` block (whose traceback holds
    the step's tensors until it ends), with nothing else referring to them. Matters with several runs per GPU."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


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
CUBLAS_WORKSPACE = ":4096:8"      # what cuBLAS needs to be deterministic; read when cuBLAS starts (tui_app.py sets it)


def set_determinism(cfg: RunConfig, device: torch.device) -> None:
    """cuDNN's and torch's deterministic algorithms for a ``deterministic`` run. warn_only: an op without a
    deterministic version warns instead of failing the run; the step's loss avoids the one it would meet
    (core/train/step.py ``cross_entropy``). CUBLAS_WORKSPACE_CONFIG must be set before cuBLAS starts, i.e. at
    process start (tui_app.py): set here it only helps a process whose cuBLAS has not started yet."""
    torch.backends.cudnn.benchmark = device.type == "cuda" and not cfg.deterministic
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.use_deterministic_algorithms(cfg.deterministic, warn_only=True)
    if cfg.deterministic and device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(device: torch.device) -> dict:
    """Every global RNG's state as tensors and plain containers (loadable with ``weights_only=True``).

    On a GPU, the generator of the training device only (``cuda``: one state, or None off the GPU): the process
    that resumes may see fewer GPUs (a scheduler's child sees one, a Slurm job its own), so a list of every
    visible GPU's state cannot be put back there."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def set_rng_state(state: dict, device: torch.device) -> None:
    """Put back what ``rng_state`` saved; the CUDA state goes to ``device`` (nothing on the CPU). Checkpoints written
    before kept a list, one state per GPU the process saw: the training device's entry is used when the list has
    it, else the first (under a scheduler or torchrun the training GPU was the process's first)."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if isinstance(cuda, (list, tuple)):
        cuda = cuda[device.index or 0] if (device.index or 0) < len(cuda) else (cuda[0] if cuda else None)
    if cuda is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda, device)
    random.setstate(_tuplify(state["python"]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x
