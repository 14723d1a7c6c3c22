"""Start training in a background process that outlives its parent (the TUI closing, an ssh session dropping).

``spawn_background(runs_dir, run_id)`` runs ``python <repo>/tui_app.py resume <run_id> --runs-dir <abs dir>`` in a
new session (no controlling terminal, so SIGHUP does not reach it), stdin from /dev/null, stdout and stderr appended
to ``<run>/process.log``, with ``NO_COLOR=1``: the CLI then prints plain lines there. The run folder stays the
bus: the caller watches status.json like any other run, and stops it with ``Run.request("stop")``.

How the scheduler (core/serve/scheduler.py) starts a run in a device slot is one small piece, a *launcher*: an object
with ``start(run, slot, lock_fd) -> handle`` whose handle has ``pid`` and ``poll()`` (``subprocess.Popen`` has
both). :class:`LocalLauncher` starts one detached process pinned to the slot's device; a launcher for torchrun on
several GPUs, or a submitit executor, takes its place without touching the scheduler.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Protocol

from core.serve.gpus import cuda_visible_for, fits
from core.store.lock import LOCK_FD_ENV
from core.store.runs import Run, RunStore
from core.util.files import open_regular

ENTRY_POINT = Path(__file__).resolve().parents[2] / "tui_app.py"


def plain_env(**extra: str) -> dict[str, str]:
    """The environment of a detached process: ours, with plain output (no colour, no terminal)."""
    return {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1", **extra}


def detached(cmd: list[str], log_path: Path, env: dict[str, str], pass_fds: tuple[int, ...] = (),
             stdout_to_log: bool = True) -> subprocess.Popen:
    """Start ``cmd`` in its own session (survives the terminal and ssh); stderr (and stdout) appended to log_path,
    which is opened without following a link (NotAFileError)."""
    log = open_regular(Path(log_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        out = log if stdout_to_log else subprocess.DEVNULL
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=log, start_new_session=True,
                                close_fds=True, pass_fds=pass_fds, env=env)
    finally:
        os.close(log)


def background_command(runs_dir: str | os.PathLike, run_id: str, nproc: int = 1) -> list[str]:
    """``tui_app.py resume RUN``; with ``nproc`` > 1 under torchrun on this machine (one run, DDP)."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc > 1 else []
    return [sys.executable, *launcher, str(ENTRY_POINT), "resume", str(run_id), "--runs-dir",
            str(Path(runs_dir).resolve())]


def spawn_background(runs_dir: str | os.PathLike, run_id: str, env: dict[str, str] | None = None,
                     pass_fds: tuple[int, ...] = (), nproc: int = 1) -> subprocess.Popen:
    """Train ``run_id`` (queued, stopped or crashed) in a detached process; returns its Popen at once.

    Raises RunError for an unknown or invalid run id. The child's own exit code follows the CLI's
    (0 finished, 1 failed, 143 stopped by a request); its output is in ``<run>/process.log``.
    """
    run = RunStore(runs_dir).get(run_id)
    return detached(background_command(runs_dir, run.id, nproc), run.path / "process.log", env or plain_env(),
                    pass_fds)


class Handle(Protocol):
    pid: int

    def poll(self) -> int | None: ...


class LocalLauncher:
    """One detached ``tui_app.py resume RUN`` process per run on this machine, pinned to its slot's device.

    GPU slots: ``CUDA_VISIBLE_DEVICES`` shows the process only its GPU (a run configured as ``auto`` or ``cuda``
    then trains there as cuda:0; one configured as ``cuda:N`` keeps the scheduler's view, since only slots of that
    GPU take it). CPU slots: no GPU, and ``OMP_NUM_THREADS`` shares the cores among the CPU slots.

    A slot of several devices (``cuda:0+cuda:1``) starts ``torchrun --nproc-per-node 2 tui_app.py resume RUN`` on
    them. torchrun's workers do not inherit the run's lock: it is let go when the scheduler closes its copy, and
    rank 0 takes it as it starts."""

    def __init__(self, runs_dir: str | os.PathLike, cpu_threads: int = 0):
        self.runs_dir = Path(runs_dir).resolve()
        self.cpu_threads = cpu_threads

    def start(self, run: Run, slot, lock_fd: int) -> subprocess.Popen:
        run_device = run.read_config().device
        nproc = slot.device.count("+") + 1
        extra = {LOCK_FD_ENV: str(lock_fd), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"} if nproc == 1 else \
            {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        if slot.device.startswith("cpu"):
            extra["CUDA_VISIBLE_DEVICES"] = ""
            if self.cpu_threads:
                extra["OMP_NUM_THREADS"] = str(max(1, self.cpu_threads // nproc))
        elif nproc > 1 or (run_device != slot.device and fits(run_device, slot.device)):
            extra["CUDA_VISIBLE_DEVICES"] = cuda_visible_for(slot.device)
        return spawn_background(self.runs_dir, run.id, plain_env(**extra), pass_fds=(lock_fd,) if nproc == 1 else (),
                                nproc=nproc)
