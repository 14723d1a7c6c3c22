"""One run over several processes with DistributedDataParallel: torchrun (or Slurm tasks set up like torchrun)
starts N copies of the same command, and this module is what they share.

``Dist.from_env()`` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``); ``process_group(device)`` joins the group (NCCL on GPUs, with gloo for the small CPU tensors of
the control exchange; gloo alone on the CPU) and leaves it afterwards. Without that environment everything here
is a no-op for one process (``SINGLE``), so the single-process trainer runs exactly as before.

How the work is split (He et al.'s recipe keeps its meaning on 1 or 8 GPUs): ``batch_size`` is the global
batch. Every process draws the same permutation and augmentation from the loader's generator and takes its
share of each global batch (core/data/loader.py ``shard``); the batch is cut into ``micro_batches`` slices, each
normalised on its own by batch norm, and a process trains its slices with gradient accumulation. So DDP over N
processes computes what one process with ``--micro-batches N`` computes, up to the order of float sums.
Every process keeps identical training state: the per-iteration sums are all-reduced (core/train/step.py
``StepWindow``), evaluation is sharded and summed, and a stop or pause is agreed on when a window is sealed (any
process may ask to stop, e.g. on SIGTERM; rank 0 reads the run's request file). Only rank 0 writes the run
folder; the others see it through ``FollowerRun``.

A process that dies breaks the group: gloo notices at once, a collective that waits on a frozen peer times out
after ``$RESLAB_DIST_TIMEOUT_S`` (default 180) seconds (NCCL's watchdog then aborts the communicators and the error
reaches the trainer). Rank 0 then records the run as crashed (resumable from its last checkpoint), or as what the
process that left said (``Dist.tell``: out-of-memory, or failed with its error), and every survivor exits. torchrun
starts its workers in sessions of their own, so killing torchrun's process group would leave them training:
each worker asks the kernel for a SIGTERM when its launcher dies (``end_with_launcher``), which stops it with a
checkpoint.
"""
from __future__ import annotations

import contextlib
import ctypes
import datetime
import inspect
import logging
import math
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as tdist

from core.util.errors import carry_on

log = logging.getLogger(__name__)
TIMEOUT_ENV = "RESLAB_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 180.0     # a collective waiting on a peer that died; NCCL then tears the process down
_PEER_WORDS = ("connection closed", "connection reset", "broken pipe", "timed out", "timeout", "nccl", "gloo",
               "peer", "socket")


class LaunchError(ValueError):
    """A launch that cannot work (batch that does not divide, --sync-bn on the CPU...); the message says why."""


@dataclass
class Dist:
    """This process's place in the run: rank of world, and the device it trains on (set by ``process_group``)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    launched: bool = False                 # started by torchrun (or equivalent), even with one process
    device: torch.device | None = None
    devices: list[str] = field(default_factory=list)   # every rank's "host:device", rank order
    store: Any = field(default=None, repr=False)       # the group's key-value store (``tell``), looked up when needed
    leaving: bool = False       # this process ends the run early (``tell``): it leaves without waiting for the others

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Dist:
        env = os.environ if env is None else env
        if "RANK" not in env or "WORLD_SIZE" not in env:
            return cls()
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        return cls(rank, world, int(env.get("LOCAL_RANK", rank)), launched=True)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def many(self) -> bool:
        """More than one process: collectives are needed."""
        return self.world > 1

    # -- collectives (no-ops for one process) ---------------------------------------------------------------------
    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce (sum) in place; returns the tensor."""
        if self.many:
            tdist.all_reduce(tensor)
        return tensor

    def agree(self, stop: bool, pause: bool) -> tuple[bool, bool]:
        """Stop if any process asks; pause as rank 0 says (it reads the request file and owns the TUI's events)."""
        if not self.many:
            return stop, pause
        flags = torch.tensor([int(stop), int(pause and self.is_main)], dtype=torch.int64)
        tdist.all_reduce(flags, op=tdist.ReduceOp.MAX)
        return bool(flags[0]), bool(flags[1])

    def first_problem(self, mine: str | None) -> str | None:
        """Every process says whether it can go on; returns the first problem (rank order), or None."""
        if not self.many:
            return mine
        said: list[Any] = [None] * self.world
        tdist.all_gather_object(said, mine)
        for rank, problem in enumerate(said):
            if problem:
                return problem if rank == self.rank else f"process {rank} of {self.world}: {problem}"
        return None

    def tell(self, note: str) -> None:
        """Leave a note for the other processes before this one leaves the run (why it ends: rank 0 records it instead
        of 'another process died'), in the process group's key-value store. Never raises."""
        if self.many:
            self.leaving = True
            with carry_on(log, "leaving a note in the process group's store"):
                self._store().set(f"reslab/end/{self.rank}", note)

    def told(self) -> tuple[int, str]:
        """(rank, note) of the first other process that left a note with ``tell``; (-1, '') when none did."""
        if self.many:
            for rank in range(self.world):
                key = f"reslab/end/{rank}"
                with carry_on(log, f"reading process {rank}'s note"):
                    if rank != self.rank and self._store().check([key]):
                        return rank, self._store().get(key).decode()
        return -1, ""

    def _store(self):
        if self.store is None:
            self.store = tdist.distributed_c10d._get_default_store()
        return self.store

    def from_main(self, value: Any) -> Any:
        """Rank 0's value, on every process."""
        if not self.many:
            return value
        box = [value]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def take_lock(self, run) -> None:
        """Rank 0 becomes the run's one writer; every process raises RunLockedError when it cannot."""
        from core.store.runs import RunLockedError

        problem = None
        try:
            run.acquire_lock()
        except RunLockedError as exc:
            problem = str(exc)
        if self.first_problem(problem):
            raise RunLockedError(problem or f"run {run.id} is being trained by another process")

    def all_or_none(self, fn: Callable[[], Any], fail: Callable[[str], Exception]) -> Any:
        """``fn()`` on every process; where it raised on another process, ``fail(its message)`` is raised here."""
        try:
            result = fn()
        except Exception as exc:
            self.first_problem(str(exc) or type(exc).__name__)
            raise
        problem = self.first_problem(None)
        if problem:
            raise fail(problem)
        return result

    def describe(self, cfg, slices_before: int, slices: int) -> list[str]:
        """Log lines: how the work is split (under DDP), and a change of micro-batches forced by the world size."""
        lines = []
        if self.many:
            share = cfg.batch_size // self.world
            norm = (f"batch norm synchronised over all {cfg.batch_size} images" if cfg.sync_bn else
                    f"batch norm over {cfg.batch_size // slices} images at a time, as one process with "
                    f"--micro-batches {slices}")
            lines.append(f"data-parallel over {self.world} processes ({', '.join(self.devices)}): {share} images "
                         f"each per iteration, {norm}")
        if slices != slices_before:
            lines.append(f"micro-batches: {slices} (the run had {slices_before}), so that every process trains "
                         f"whole slices of the batch")
        return lines
        return lines

    def sync_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers (batch-norm running statistics) everywhere, as DDP keeps them for training."""
        if self.many:
            for buf in model.buffers():
                tdist.broadcast(buf, src=0)

    # -- models -----------------------------------------------------------------------------------------------------
    def wrap(self, model: torch.nn.Module, sync_bn: bool) -> torch.nn.Module:
        """The module that trains: DDP over the group (with SyncBatchNorm when asked), even for one process under a
        launcher (a sanity run of the multi-GPU code path); the model itself without a launcher."""
        if not self.launched:
            return model
        device = self.device or torch.device("cpu")
        if sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [device.index] if device.type == "cuda" else None
        # no broadcast of rank 0's buffers before every forward: only rank 0's batch-norm statistics are ever used
        # (checkpoint, and sync_buffers before each evaluation), and its own evolve the same without it.
        # broadcast_buffers is deprecated from torch 2.14 (a FutureWarning in every run): forward_sync_buffers there
        ddp = torch.nn.parallel.DistributedDataParallel
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                   else {"broadcast_buffers": False})
        return ddp(model, device_ids=ids, **no_sync)


SINGLE = Dist()


# -- launch checks -----------------------------------------------------------------------------------------------------
def check_launch(cfg, world: int, device: torch.device | None) -> dict[str, str]:
    """Field -> problem for running ``cfg`` on ``world`` processes of ``device``; empty when it can run."""
    errors = {}
    if cfg.batch_size % world:
        lower, upper = cfg.batch_size - cfg.batch_size % world, cfg.batch_size + world - cfg.batch_size % world
        errors["batch_size"] = (f"the global batch of {cfg.batch_size} images does not divide among {world} "
                                f"processes; use a multiple of {world} (e.g. {lower or upper} or {upper})")
    if cfg.sync_bn and device is not None and device.type != "cuda":
        errors["sync_bn"] = (f"synchronised batch norm needs GPUs (PyTorch's SyncBatchNorm refuses {device.type} "
                             f"modules); without it each process normalises its own share, as --micro-batches does")
    return errors


def micro_batches_for(cfg, world: int, slices: int) -> int:
    """Slices of the global batch a run uses on ``world`` processes, starting from ``slices`` (the config's, or the
    checkpoint's): without --sync-bn every process trains whole slices, so the count becomes a multiple of ``world``
    (the least one; batch norm then sees fewer images, which the trainer logs)."""
    if world == 1 or cfg.sync_bn:
        return slices
    return math.lcm(slices, world)


def resolve_launch_device(name: str, dist: Dist) -> torch.device:
    """The device of this process: under a launcher, GPU ``LOCAL_RANK`` (CUDA_VISIBLE_DEVICES order) whatever GPU the
    config names; started by a scheduler for a GPU slot, ``$RESLAB_DEVICE`` (the slot's GPU, the only one it sees);
    else the config's device (core/train/device.py ``resolve_device``). Raises DeviceError."""
    from core.train.device import DeviceError, resolve_device
    from core.util.env import DEVICE_ENV

    placed = os.environ.get(DEVICE_ENV)    # a scheduler's child sees its slot's GPU only, as cuda:0
    dev = resolve_device(placed if placed and not dist.launched and name != "cpu" else name)
    if not dist.launched or dev.type != "cuda":
        return dev
    if torch.cuda.device_count() == 1 and "SLURM_JOB_ID" in os.environ:
        return torch.device("cuda", 0)     # a site that binds one GPU to each task of a job: it is this task's
    if dist.local_rank >= torch.cuda.device_count():
        raise DeviceError(f"cuda:{dist.local_rank} asked for by process {dist.rank} (LOCAL_RANK), but only "
                          f"{torch.cuda.device_count()} GPU(s) are visible; start at most that many per node")
    return torch.device("cuda", dist.local_rank)


def end_with_launcher() -> None:
    """Linux: SIGTERM to this process when its parent (torchrun's agent) dies, as a stop request (the CLI stops with a
    checkpoint). torchrun puts each worker in a session of its own, so a killed torchrun (or its process group) left
    the workers training with nobody to wait for them. Elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)    # PR_SET_PDEATHSIG
        if os.getppid() == 1:     # the launcher died before the request was in place: this process was adopted
            os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def process_group(device_name: str, dist: Dist | None = None) -> Iterator[Dist]:
    """Join the launcher's process group for this block (SINGLE, untouched, without a launcher).

    Raises DeviceError for a device this node lacks."""
    dist = dist or Dist.from_env()
    if not dist.launched:
        yield SINGLE
        return
    end_with_launcher()
    dist.device = device = resolve_launch_device(device_name, dist)
    timeout = datetime.timedelta(seconds=float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # NCCL's watchdog aborts a collective stuck past the timeout (a dead peer). torch's default, 3 (SkipCleanUp),
        # then kills this process from the watchdog thread: rank 0 died before it could write why. 2 (CleanUpOnly)
        # aborts the communicators and lets the error reach the trainer, which records the run's end and its cause.
        os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2")
        tdist.init_process_group("cpu:gloo,cuda:nccl", timeout=timeout, device_id=device)
    else:
        tdist.init_process_group("gloo", timeout=timeout)
    try:
        dist.devices = [f"{socket.gethostname()}:{device}"] * dist.world
        if dist.many:
            tdist.all_gather_object(dist.devices, dist.devices[0])
        yield dist
        if dist.many and not dist.leaving:      # one that leaves early must not wait: the others notice it left
            # every process leaves together: rank 0 holds the group's key-value store, and a process that left first
            # took it with it while another was still using it; that one died in C++ ("terminate called without an
            # active exception", exit -6), which torchrun counts as a failure (seen under load in the DDP tests)
            with carry_on(log, "the barrier before leaving the process group"):
                tdist.barrier()
    finally:
        with carry_on(log, "destroying the process group"):   # a broken group (a peer died) may refuse even this
            tdist.destroy_process_group()


def peer_lost(exc: BaseException, dist: Dist) -> str | None:
    """A message when ``exc`` says another process of the run died or stopped answering, else None."""
    if not dist.many:
        return None
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    if isinstance(exc, tdist.DistError) or any(w in text.lower() for w in _PEER_WORDS):
        return (f"another process of this run died or stopped answering ({text[:200]}); "
                f"resume from the last checkpoint")
    return None


class FollowerRun:
    """A run folder as ranks other than 0 see it: reads pass through, writes and requests are rank 0's."""

    _NOOPS = ("write_status", "log", "append_jsonl", "append_epoch", "append_steps", "request", "clear_request",
              "acquire_lock", "release_lock")

    def __init__(self, run):
        self._run = run

    def __getattr__(self, name: str) -> Any:
        if name in FollowerRun._NOOPS:
            return lambda *a, **k: None
        return getattr(self._run, name)

    def read_request(self) -> None:
        return None

    def update_status(self, **fields: Any) -> dict:
        return {}

    def truncate_logs(self, epochs_done: int, step: int) -> dict[str, int]:
        return {}


def end_of(exc: Exception, dist: Dist) -> tuple[str, str]:
    """The state and message a failure ends a run with: out-of-memory (here, or on another process that said so
    before it left: a lost peer then is a consequence), crashed (another process died: resumable), else failed."""
    from core.train.device import is_out_of_memory

    if is_out_of_memory(exc):
        return "out-of-memory", f"out of memory: {exc}".splitlines()[0]
    lost = peer_lost(exc, dist)
    if not lost:
        return "failed", f"{type(exc).__name__}: {exc}"
    rank, note = dist.told()
    state, _, why = note.partition(": ")
    if state in ("out-of-memory", "failed", "diverged"):      # what the process that left said (``Dist.tell``)
        return state, f"process {rank} of {dist.world}: {why}"
    return "crashed", lost
