"""ResLab entry point: no arguments opens the TUI; subcommands (train, resume, stop, runs, show, eval) run headless."""
from __future__ import annotations

import sys


def _hold_stop_signals() -> list[int]:
    """SIGINT/SIGTERM that arrive while the CLI is imported (a fraction of a second before it handles them itself)
    are kept, not fatal: the CLI delivers them once it can say what they did (``cli.main.main``)."""
    import signal

    pending: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: pending.append(signum))
    return pending


def main(argv: list[str] | None = None) -> int:
    pending = _hold_stop_signals()
    import os

    # before torch loads: CUDA then numbers the GPUs in PCI bus order, as NVML and nvidia-smi do (the devices panel,
    # --devices, the scheduler's CUDA_VISIBLE_DEVICES); its default numbers the fastest first
    os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
    # cuBLAS reads this once, when it starts: a deterministic run that is not the process's first (the TUI's second,
    # the in-process queue's) is deterministic only if it was set before any (core/train/device.py set_determinism)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    problem = _torch_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    from cli.main import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv, pending_signals=pending)


def _torch_problem() -> str | None:
    """A torch older than ResLab needs, read from its version.py (no import: commands that need no torch stay fast;
    importlib.metadata's search of every installed package took 40 ms of each command), else from its metadata."""
    import importlib.util
    import re

    from core.util.env import torch_version_problem

    spec = importlib.util.find_spec("torch")
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or ():
        try:
            with open(f"{folder}/version.py", encoding="utf-8") as fh:
                found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", fh.read(), re.M)
        except OSError:
            continue
        if found:
            return torch_version_problem(found.group(1))
    from importlib import metadata

    try:
        return torch_version_problem(metadata.version("torch"))
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
