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

from core.serve.gpus import cuda_visible_for
from core.store.lock import LOCK_FD_ENV
from core.store.runs import Run, RunStore
from core.util.env import DEVICE_ENV, MEMORY_FRACTION_ENV, SHARED_ENV
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


def child_env(slot_device: str, threads: int = 0, sharing: int = 1,
              parent: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a trainer process started for a slot on ``slot_device`` gets on top of ``plain_env``.

    - ``CUDA_DEVICE_ORDER=PCI_BUS_ID``: CUDA numbers the GPUs as NVML and nvidia-smi do (core/serve/gpus.py).
    - ``CUDA_VISIBLE_DEVICES``: always, so the child sees its slot's GPU(s) only ('' on a CPU slot), as
      ``cuda:0``: ``RESLAB_DEVICE=cuda:0`` tells the trainer to train there whatever GPU the run's config names (the
      scheduler placed it on a slot it fits). A slot of several GPUs (torchrun) shows them all; LOCAL_RANK picks.
    - ``OMP_NUM_THREADS``: ``threads`` (the slot's share of the cores), split among a torchrun slot's processes.
    - ``sharing`` > 1 (``--per-device N``): ``RESLAB_GPU_SHARED=N``, and a memory fraction of 1/N for each process
      (``RESLAB_MEMORY_FRACTION``) unless ``parent`` (our environment) already sets one.

    Pure: ``parent`` (default ``os.environ``) is read for CUDA_VISIBLE_DEVICES and the memory fraction only."""
    parent = os.environ if parent is None else parent
    nproc = slot_device.count("+") + 1
    env = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", DEVICE_ENV: "", SHARED_ENV: ""}   # none inherited from ours
    if threads:
        env["OMP_NUM_THREADS"] = str(max(1, threads // nproc))
    if not slot_device.startswith("cuda"):
        env["CUDA_VISIBLE_DEVICES"] = ""
        return env
    env["CUDA_VISIBLE_DEVICES"] = cuda_visible_for(slot_device, parent)
    if nproc == 1:
        env[DEVICE_ENV] = "cuda:0"
    if sharing > 1:
        env[SHARED_ENV] = str(sharing)
        if not parent.get(MEMORY_FRACTION_ENV):
            env[MEMORY_FRACTION_ENV] = f"{1 / sharing:.4f}"
    return env


class LocalLauncher:
    """One detached ``tui_app.py resume RUN`` process per run on this machine, pinned to its slot's device by
    ``child_env``: a GPU slot's process sees that GPU only; a CPU slot's none, with ``OMP_NUM_THREADS`` sharing the
    cores among the CPU slots (GPU slots share the rest of them).

    A slot of several devices (``cuda:0+cuda:1``) starts ``torchrun --nproc-per-node 2 tui_app.py resume RUN`` on
    them. torchrun's workers do not inherit the run's lock: it is let go when the scheduler closes its copy, and
    rank 0 takes it as it starts."""

    def __init__(self, runs_dir: str | os.PathLike, cpu_threads: int = 0, gpu_threads: int = 0,
                 sharing: dict[str, int] | None = None):
        self.runs_dir = Path(runs_dir).resolve()
        self.cpu_threads, self.gpu_threads = cpu_threads, gpu_threads
        self.sharing = sharing or {}       # device -> the number of slots on it (--per-device)

    def start(self, run: Run, slot, lock_fd: int) -> subprocess.Popen:
        nproc = slot.device.count("+") + 1
        threads = self.cpu_threads if slot.device.startswith("cpu") else self.gpu_threads
        extra = child_env(slot.device, threads, self.sharing.get(slot.device, 1))
        if nproc == 1:
            extra[LOCK_FD_ENV] = str(lock_fd)
        return spawn_background(self.runs_dir, run.id, plain_env(**extra), pass_fds=(lock_fd,) if nproc == 1 else (),
                                nproc=nproc)
