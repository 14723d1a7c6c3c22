"""The training loop: one run folder in, a finished (or stopped, failed, diverged...) run folder out.

``Trainer(run).run()`` trains in the calling thread. It starts fresh when the run has no checkpoint and resumes
exactly otherwise: the checkpoint holds model, optimizer, scaler, schedule, loader position and generator, every RNG
state, the partial epoch's sums and the not-yet-logged iterations, so a run stopped at any iteration ends with the
same weights (bitwise on the CPU with ``deterministic``) and the same per-epoch metrics as an uninterrupted one.

Per iteration nothing is read back from the device: each iteration's loss and error count go into a small device
buffer; every ``log_every`` iterations the buffer is copied to the host asynchronously and read one window later
(``StepWindow``). Stop/pause requests are obeyed between iterations, from ``threading.Event``s or from the run's
request file (another process).
"""
from __future__ import annotations

import copy
import math
import os
import platform
import random
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import __version__
from .config import ConfigError, RunConfig
from .data import DataError, load_data
from .events import (CheckpointSaved, Ended, EpochEnded, EventCallback, LogLine, Progress, Started, StateChanged,
                     TrainerEvent)
from .loader import DeviceLoader, normalization_stats
from .models import cifar_resnet
from .optim import LRSchedule, build_optimizer
from .runs import HEARTBEAT_S, Run, RunError, RunStore, atomic_write_bytes, iso, now

CHECKPOINT_FORMAT = 1
PROGRESS_EVERY_S = 0.25       # at most 4 Progress events a second
REQUEST_POLL_S = 0.5          # how often the request file is looked at
EVAL_BATCH = 1000


class _Stop(Exception):
    """Raised inside the loop to end training with a state."""

    def __init__(self, state: str, message: str = ""):
        super().__init__(message)
        self.state, self.message = state, message


# -- devices, precision, environment -----------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise _Stop("failed", f"device {name} asked for, but no CUDA GPU is available here (use --device cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise _Stop("failed", f"device {name} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    return dev


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision != "auto":
        return precision
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


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
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


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


def measure_channels_last(model: torch.nn.Module, device: torch.device, precision: str, batch_size: int,
                          reps: int = 2, steps: int = 2) -> tuple[bool, str]:
    """Time training steps of copies of ``model`` in both memory formats and say whether channels_last wins.

    Measured, not assumed: channels_last is often faster for convolutions but can lose at 16 channels or on some
    CPUs. The inputs come from a private generator, so the run's random streams are untouched.
    """
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
    probes = {}
    for fmt in (False, True):
        probe = copy.deepcopy(model).train()
        if fmt:
            probe = probe.to(memory_format=torch.channels_last)
        st = TrainStep(probe, torch.optim.SGD(probe.parameters(), lr=0.0), device, precision)
        probes[fmt] = (st, x.contiguous(memory_format=torch.channels_last) if fmt else x)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(reps):
        for fmt, (st, xx) in probes.items():
            st(xx, y, 0.0)  # warm-up (cudnn.benchmark picks its algorithms here)
            sync_device(device)
            t0 = time.perf_counter()
            for _ in range(steps):
                st(xx, y, 0.0)
            sync_device(device)
            best[fmt] = min(best[fmt], (time.perf_counter() - t0) / steps)
    del probes
    choice = best[True] < best[False] * 0.97
    return choice, f"measured contiguous {best[False] * 1e3:.1f} ms, channels_last {best[True] * 1e3:.1f} ms per step"


def sync_device(device: torch.device) -> None:
    """Wait for the device (a no-op on the CPU); only for timing and epoch ends, never per iteration."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- one optimisation step -------------------------------------------------------------------------------------------------
class TrainStep:
    """Forward, backward and optimizer step for one batch, optionally split into micro-batches.

    Returns the batch's mean loss and its count of wrong predictions as device tensors (no sync). Shared by the
    trainer and bench/throughput.py, so the benchmark measures the engine's real step.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 precision: str = "fp32", channels_last: bool = False, compiled: torch.nn.Module | None = None,
                 batch_size: int = 0):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.precision = precision
        self.amp_dtype = AMP_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.channels_last = channels_last
        self.compiled = compiled
        self.batch_size = batch_size
        self.micro_batches = 1

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # The compiled module sees only full batches, so the last partial batch never triggers a recompile.
        net = self.compiled if self.compiled is not None and x.shape[0] == self.batch_size else self.model
        self.optimizer.zero_grad(set_to_none=True)
        n = x.shape[0]
        chunks = max(1, min(self.micro_batches, n))
        losses, wrongs = [], []
        for xs, ys in zip(x.chunk(chunks), y.chunk(chunks)):
            with self.autocast():
                out = net(xs)
                loss = F.cross_entropy(out.float(), ys)
            self.scaler.scale(loss * (xs.shape[0] / n) if chunks > 1 else loss).backward()
            losses.append(loss.detach() * xs.shape[0])
            wrongs.append((out.detach().argmax(1) != ys).sum())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if chunks == 1:
            return losses[0] / n, wrongs[0]
        return torch.stack(losses).sum() / n, torch.stack(wrongs).sum()


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DeviceLoader, step: TrainStep | None = None) -> tuple[float, float]:
    """Mean cross-entropy and error (%) over a whole split, in large batches, without autograd."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=loader.device, dtype=torch.float64)
    wrong = torch.zeros((), device=loader.device, dtype=torch.int64)
    try:
        for x, y in loader:
            with (step.autocast() if step else torch.autocast(loader.device.type, enabled=False)):
                out = model(x)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum").double()
            wrong += (out.argmax(1) != y).sum()
    finally:
        model.train(was_training)
    n = loader.num_samples
    return float(loss_sum) / n, 100.0 * int(wrong) / n


# -- the window of per-iteration figures -------------------------------------------------------------------------------
class StepWindow:
    """Per-iteration loss and wrong counts, kept on the device and read back one window late.

    Two device buffers alternate; sealing one starts an async copy to the host, and the previous copy is read then,
    so the host never waits for the GPU inside an epoch.
    """

    def __init__(self, size: int, device: torch.device):
        self.size, self.device = size, device
        self.bufs = [torch.zeros(size, 2, device=device) for _ in range(2)]
        pin = device.type == "cuda"
        self.host = [torch.zeros(size, 2, pin_memory=pin) for _ in range(2)]
        self.cur = 0
        self.meta: list[tuple[int, int, int, float]] = []   # (step, epoch, batch size, lr) per filled slot
        self.pending: list[tuple[int, list, Any]] = []      # (buffer index, meta, cuda event)

    def put(self, loss: torch.Tensor, wrong: torch.Tensor, step: int, epoch: int, bs: int, lr: float) -> None:
        j = len(self.meta)
        buf = self.bufs[self.cur]
        buf[j, 0] = loss.detach().float()
        buf[j, 1] = wrong.float()
        self.meta.append((step, epoch, bs, lr))

    @property
    def full(self) -> bool:
        return len(self.meta) >= self.size

    def seal(self) -> None:
        if not self.meta:
            return
        i = self.cur
        self.host[i][: len(self.meta)].copy_(self.bufs[i][: len(self.meta)], non_blocking=True)
        event = None
        if self.device.type == "cuda":
            event = torch.cuda.Event()
            event.record()
        self.pending.append((i, self.meta, event))
        self.meta = []
        self.cur = 1 - i

    def drain(self, keep: int = 0) -> list[tuple[int, int, int, float, float, float]]:
        """Read sealed windows (all but the newest ``keep``): rows of (step, epoch, bs, lr, loss, wrong)."""
        rows = []
        while len(self.pending) > keep:
            i, meta, event = self.pending.pop(0)
            if event is not None:
                event.synchronize()
            vals = self.host[i][: len(meta)].tolist()
            rows.extend((*m, v[0], v[1]) for m, v in zip(meta, vals))
        return rows


# -- the trainer ---------------------------------------------------------------------------------------------------------
class Trainer:
    """Trains one run folder. See the module docstring."""

    def __init__(self, run: Run, on_event: EventCallback | None = None, stop_event: threading.Event | None = None,
                 pause_event: threading.Event | None = None, cpu_threads: int | None = None):
        self.run_folder = run
        self.cpu_threads = cpu_threads  # CPU runs: torch threads to use (the TUI leaves a core to the interface)
        self.on_event = on_event
        self.stop_event = stop_event or threading.Event()
        self.pause_event = pause_event or threading.Event()
        self.status: dict[str, Any] = {}
        self._external_pause = False
        self._format_note = ""
        self._last_eval_s = 0.0

    # plumbing ----------------------------------------------------------------------------------------------------------
    def emit(self, event: TrainerEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception as exc:  # noqa: BLE001 - a broken listener must not kill training
                self.log(f"event listener failed: {type(exc).__name__}: {exc}", emit=False)

    def log(self, message: str, emit: bool = True) -> None:
        self.run_folder.log(message)
        if emit:
            self.emit(LogLine(self.run_folder.id, message))

    def write_status(self, **fields: Any) -> None:
        self.status.update(fields)
        self.status["updated_at"] = now()
        self.run_folder.write_status(self.status)
        self._last_heartbeat = time.monotonic()

    def set_state(self, state: str, **fields: Any) -> None:
        self.write_status(state=state, **fields)
        self.emit(StateChanged(self.run_folder.id, state))

    # entry point -------------------------------------------------------------------------------------------------------
    def run(self) -> str:
        """Train until finished, stopped or failed; returns the final state. Raises RunLockedError if taken."""
        run = self.run_folder
        run.acquire_lock()
        try:
            try:
                self.status = run.read_status()
            except (OSError, ValueError):
                self.status = {}
            run.clear_request()
            self.set_state("running", pid=os.getpid(), host=socket.gethostname(), started_at=now(), error=None)
            try:
                state, message = self._train()
            except _Stop as stop:
                state, message = stop.state, stop.message
            except torch.OutOfMemoryError as exc:
                state, message = "out-of-memory", f"out of memory: {exc}".splitlines()[0]
            except Exception as exc:  # noqa: BLE001 - any failure becomes a readable state, never a lost run
                state, message = "failed", f"{type(exc).__name__}: {exc}"
            fields: dict[str, Any] = {"error": message if state in ("failed", "diverged", "out-of-memory") else None}
            if state == "finished":
                fields["finished_at"] = now()
            self.set_state(state, **fields)
            self.log(f"{state}" + (f": {message}" if message else ""))
            self.emit(Ended(run.id, state, message))
            return state
        finally:
            run.release_lock()

    # setup -------------------------------------------------------------------------------------------------------------
    def _train(self) -> tuple[str, str]:
        run = self.run_folder
        try:
            cfg = run.read_config()
        except (OSError, ValueError, ConfigError) as exc:
            raise _Stop("failed", f"config.json is unreadable: {exc}") from None
        errors = cfg.validate()
        if errors:
            raise _Stop("failed", "invalid config: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
        device = resolve_device(cfg.device)
        if device.type == "cpu" and self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        set_determinism(cfg, device)
        seed_everything(cfg.seed)
        try:
            data = load_data(cfg)
        except DataError as exc:
            raise _Stop("failed", str(exc)) from None
        ckpt = self._load_checkpoint() if run.checkpoint_path.exists() else None

        precision = resolve_precision(cfg.precision, device)
        mean, std = normalization_stats(data.train_x, cfg.normalize)
        model = cifar_resnet(cfg.depth, cfg.shortcut, cfg.width, num_classes=data.num_classes).to(device)
        channels_last = ckpt["channels_last"] if ckpt else self._choose_channels_last(cfg, model, device, precision)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        loader_kw = dict(device=device, mean=mean, std=std, channels_last=channels_last)
        train = DeviceLoader(data.train_x, data.train_y, cfg.batch_size, shuffle=True, augment=cfg.augment,
                             seed=cfg.seed, **loader_kw)
        test = DeviceLoader(data.test_x, data.test_y, EVAL_BATCH, shuffle=False, augment=False, **loader_kw)
        val = (DeviceLoader(data.val_x, data.val_y, EVAL_BATCH, shuffle=False, augment=False, **loader_kw)
               if data.val_x is not None else None)
        ipe = len(train)
        total_steps = cfg.iterations or cfg.epochs * ipe
        total_epochs = math.ceil(total_steps / ipe)
        optimizer = build_optimizer(model, cfg, device)
        schedule = LRSchedule(cfg, ipe, total_steps)
        compiled = None
        if cfg.compile:
            compiled = torch.compile(model)
        step_fn = TrainStep(model, optimizer, device, precision, channels_last, compiled, cfg.batch_size)

        self.cfg, self.device, self.model, self.train_loader = cfg, device, model, train
        self.test_loader, self.val_loader, self.schedule, self.step_fn = test, val, schedule, step_fn
        self.ipe, self.total_steps, self.total_epochs = ipe, total_steps, total_epochs
        self.step, self.epoch = 0, 0
        self.epoch_sums = [0.0, 0.0, 0]       # loss*bs, wrong, images of the epoch in progress
        self.window_rows: list = []           # iterations read back but not yet in steps.jsonl
        self.best_err: float | None = None
        self.elapsed = 0.0
        self.compile_s = 0.0
        if ckpt:
            self._restore(ckpt)
            run.truncate_logs(self.epoch, self.step)
            self.log(f"resumed at epoch {self.epoch + 1}, step {self.step} of {total_steps} "
                     f"({self.epoch} epoch{'s' if self.epoch != 1 else ''} done)")
        else:
            run.truncate_logs(0, 0)
            self.log(f"started {cfg.label()} on {device} ({precision}"
                     f"{', channels_last' if channels_last else ''}{', compiled' if compiled is not None else ''}), "
                     f"{len(train.y)} training images, {ipe} iterations/epoch, {total_steps} iterations")
            if self._format_note:
                self.log(self._format_note)
        env = environment(device)
        self.write_status(total_steps=total_steps, total_epochs=total_epochs, iters_per_epoch=ipe, step=self.step,
                          epoch=self.epoch, device=str(device), precision=precision, channels_last=channels_last,
                          micro_batches=step_fn.micro_batches, env=env, seed=cfg.seed,
                          deterministic=cfg.deterministic, elapsed_s=self.elapsed)
        self.emit(Started(run.id, resumed=bool(ckpt), step=self.step, total_steps=total_steps, epoch=self.epoch,
                          total_epochs=total_epochs, iters_per_epoch=ipe, device=str(device)))
        if self.epoch >= total_epochs:
            return "finished", ""
        return self._loop()

    def _choose_channels_last(self, cfg: RunConfig, model, device, precision) -> bool:
        if cfg.channels_last != "auto":
            return cfg.channels_last == "on"
        if cfg.deterministic:
            return False
        try:
            choice, detail = measure_channels_last(model, device, precision, cfg.batch_size)
        except torch.OutOfMemoryError:
            if device.type == "cuda":
                torch.cuda.empty_cache()
            choice, detail = False, "not measured: the probe ran out of memory"
        self._format_note = f"memory format: channels_last {'on' if choice else 'off'} ({detail})"
        return choice

    # the loop ------------------------------------------------------------------------------------------------------------
    def _loop(self) -> tuple[str, str]:
        cfg, train = self.cfg, self.train_loader
        window = StepWindow(cfg.log_every, self.device)
        self._window = window
        last_progress = last_poll = time.monotonic()
        self._last_heartbeat = time.monotonic()
        seg_start, seg_steps = time.monotonic(), 0
        epoch_start = time.monotonic()
        self._epoch_t0_elapsed = self.elapsed
        self._rate = None
        self._latest = (None, None)
        first_compiled = cfg.compile
        drops = set(self.schedule.boundaries())
        while self.epoch < self.total_epochs:
            # a run stopped right after an epoch's last iteration resumes straight into that epoch's evaluation
            epoch_end = min(self.total_steps, (self.epoch + 1) * self.ipe)
            for x, y in (train if self.step < epoch_end else ()):
                lr = self.schedule.lr(self.step)
                if self.step in drops and self.step > 0:
                    self.log(f"lr dropped to {lr:g} at step {self.step}")
                t_step = time.monotonic() if first_compiled else 0.0
                loss, wrong = self._guarded_step(x, y, lr)
                if first_compiled and x.shape[0] == cfg.batch_size:
                    sync_device(self.device)
                    self.compile_s = time.monotonic() - t_step
                    self.log(f"torch.compile took {self.compile_s:.1f} s (not counted as training time)")
                    self.write_status(compile_s=round(self.compile_s, 2))
                    epoch_start += self.compile_s
                    seg_start += self.compile_s
                    first_compiled = False
                window.put(loss, wrong, self.step, self.epoch + 1, x.shape[0], lr)
                self.step += 1
                seg_steps += 1
                if window.full or self.step % cfg.log_every == 0:
                    window.seal()
                    # while the paper's warm-up watches the error, read now so the switch happens at a fixed step
                    self._absorb(window.drain(keep=0 if self.schedule.watching_error else 1))
                t = time.monotonic()
                if t - last_progress >= PROGRESS_EVERY_S:
                    if seg_steps >= 3:
                        self._rate = seg_steps * cfg.batch_size / (t - seg_start)
                    self._emit_progress(lr, t - epoch_start)
                    last_progress = t
                if t - last_poll >= REQUEST_POLL_S:
                    last_poll = t
                    self._poll_request()
                if t - self._last_heartbeat >= HEARTBEAT_S:
                    self.write_status(step=self.step, lr=lr, elapsed_s=self._elapsed_now(epoch_start),
                                      last_loss=self._latest[0], last_err=self._latest[1],
                                      images_per_s=self._rate, eta_s=self._eta())
                if self.pause_event.is_set() or self._external_pause:
                    paused_for = self._hold(epoch_start)
                    epoch_start += paused_for
                    seg_start, seg_steps = time.monotonic(), 0
                if self.stop_event.is_set():
                    return self._stop(epoch_start)
                if self.step >= epoch_end:
                    break
            self._end_epoch(time.monotonic() - epoch_start)
            epoch_start = time.monotonic()
            self._epoch_t0_elapsed = self.elapsed
            seg_start, seg_steps = time.monotonic(), 0
        return "finished", ""

    def _guarded_step(self, x, y, lr):
        """One step; on CUDA out-of-memory either split the batch into micro-batches (same effective batch) or stop."""
        while True:
            try:
                return self.step_fn(x, y, lr)
            except torch.OutOfMemoryError:
                self.step_fn.optimizer.zero_grad(set_to_none=True)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                cfg, mb = self.cfg, self.step_fn.micro_batches
                if cfg.on_oom == "split" and mb < cfg.batch_size:
                    self.step_fn.micro_batches = min(cfg.batch_size, mb * 2)
                    per = math.ceil(cfg.batch_size / self.step_fn.micro_batches)
                    self.log(f"out of memory at batch {cfg.batch_size}: continuing with {self.step_fn.micro_batches} "
                             f"micro-batches of {per} and gradient accumulation (same effective batch; batch-norm "
                             f"statistics now use {per} images)")
                    self.write_status(micro_batches=self.step_fn.micro_batches)
                    continue
                raise _Stop("out-of-memory",
                            f"out of memory at batch size {cfg.batch_size} (ResNet-{cfg.depth}, width {cfg.width}, "
                            f"{self.step_fn.precision}); try a smaller --batch-size, --precision bf16, or on_oom=split")

    def _absorb(self, rows) -> None:
        """Take iterations read back from the device: epoch sums, steps.jsonl rows, divergence, error warm-up."""
        if not rows:
            return
        for step, epoch, bs, lr, loss, wrong in rows:
            if not math.isfinite(loss):
                self.window_rows = []
                raise _Stop("diverged", f"loss became {loss} at step {step + 1} (epoch {epoch}, lr {lr:g}); "
                                        f"try a lower --lr or a warm-up")
            if epoch == self.epoch + 1:
                self.epoch_sums[0] += loss * bs
                self.epoch_sums[1] += wrong
                self.epoch_sums[2] += bs
            self.window_rows.append((step, epoch, bs, lr, loss, wrong))
        out = []
        while self.window_rows:
            # a steps.jsonl point closes at every multiple of log_every and at the end of an epoch
            cut = next((i for i, r in enumerate(self.window_rows)
                        if (r[0] + 1) % self.cfg.log_every == 0 or (r[0] + 1) % self.ipe == 0
                        or r[0] + 1 == self.total_steps), None)
            if cut is None:
                break
            part, self.window_rows = self.window_rows[:cut + 1], self.window_rows[cut + 1:]
            n = sum(r[2] for r in part)
            loss = sum(r[4] * r[2] for r in part) / n
            err = 100.0 * sum(r[5] for r in part) / n
            last = part[-1]
            out.append({"step": last[0] + 1, "epoch": last[1], "loss": round(loss, 6), "err": round(err, 4),
                        "lr": float(f"{last[3]:.6g}")})
            self._latest = (loss, err)
            if self.schedule.watching_error and self.schedule.observe_train_error(last[0] + 1, err):
                self.log(f"warm-up done: training error {err:.1f}% < 80% at step {last[0] + 1}; lr back to "
                         f"{self.cfg.lr:g} (He et al. 2016, ResNet-110 recipe)")
        self.run_folder.append_steps(out)

    def _flush(self) -> None:
        self._window.seal()
        self._absorb(self._window.drain(keep=0))

    def _elapsed_now(self, epoch_start: float) -> float:
        return self._epoch_t0_elapsed + (time.monotonic() - epoch_start)

    def _emit_progress(self, lr: float, epoch_elapsed: float) -> None:
        i = self.step - (self.epoch * self.ipe)
        eta = self._eta()
        loss, err = self._latest
        self.emit(Progress(self.run_folder.id, epoch=self.epoch + 1, total_epochs=self.total_epochs,
                           iter_in_epoch=min(i, self.ipe), iters_per_epoch=self.ipe, step=self.step,
                           total_steps=self.total_steps, loss=loss, err=err, lr=lr, images_per_s=self._rate,
                           eta_s=eta, elapsed_s=self._epoch_t0_elapsed + epoch_elapsed))

    def _eta(self) -> float | None:
        """Seconds left: remaining iterations at the recent rate, plus one evaluation per remaining epoch."""
        if not self._rate:
            return None
        eval_s = self._last_eval_s * (self.total_epochs - self.epoch)
        return round((self.total_steps - self.step) * self.cfg.batch_size / self._rate + eval_s, 1)

    def _poll_request(self) -> None:
        req = self.run_folder.read_request()
        if not req:
            return
        self.run_folder.clear_request()
        if req == "stop":
            self.log("stop requested from another process")
            self.stop_event.set()
        elif req == "pause":
            self._external_pause = True
        elif req == "continue":
            self._external_pause = False
            self.pause_event.clear()

    def _hold(self, epoch_start: float) -> float:
        """Paused: keep heartbeats and request polling going; nothing is freed. Returns the seconds held."""
        t0 = time.monotonic()
        self._flush()
        self.set_state("paused", step=self.step, elapsed_s=self._elapsed_now(epoch_start))
        self.log(f"paused at step {self.step}")
        while (self.pause_event.is_set() or self._external_pause) and not self.stop_event.is_set():
            time.sleep(0.05)
            self._poll_request()
            if time.monotonic() - self._last_heartbeat >= HEARTBEAT_S:
                self.write_status()
        held = time.monotonic() - t0
        if not self.stop_event.is_set():
            self.set_state("running")
            self.log(f"continued at step {self.step}")
        return held

    def _stop(self, epoch_start: float) -> tuple[str, str]:
        self._flush()
        self.elapsed = self._elapsed_now(epoch_start)
        self._save_checkpoint()
        self.write_status(step=self.step, epoch=self.epoch, elapsed_s=self.elapsed)
        return "stopped", f"stopped at epoch {self.epoch + 1}, step {self.step}; resumable"

    # epochs and checkpoints ----------------------------------------------------------------------------------------------
    def _end_epoch(self, seconds: float) -> None:
        self._flush()
        sync_device(self.device)
        train_seconds = seconds
        t0 = time.monotonic()
        test_loss, test_err = evaluate(self.model, self.test_loader, self.step_fn)
        row: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step}
        loss_sum, wrong, n = self.epoch_sums
        row["train_loss"] = round(loss_sum / max(1, n), 6)
        row["train_err"] = round(100.0 * wrong / max(1, n), 4)
        row["test_loss"], row["test_err"] = round(test_loss, 6), round(test_err, 4)
        if self.val_loader is not None:
            vl, ve = evaluate(self.model, self.val_loader, self.step_fn)
            row["val_loss"], row["val_err"] = round(vl, 6), round(ve, 4)
        eval_seconds = time.monotonic() - t0
        self._last_eval_s = eval_seconds
        row["lr"] = float(f"{self.schedule.lr(max(0, self.step - 1)):.6g}")
        row["seconds"] = round(train_seconds + eval_seconds, 3)
        row["eval_seconds"] = round(eval_seconds, 3)
        row["images_per_s"] = round(n / train_seconds, 1) if train_seconds > 0 else None
        row["peak_mem_bytes"] = (torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else None)
        self.epoch += 1
        self.epoch_sums = [0.0, 0.0, 0]
        self.elapsed = self._epoch_t0_elapsed + train_seconds + eval_seconds
        improved = self.best_err is None or test_err < self.best_err
        if improved:
            self.best_err = test_err
        self.run_folder.append_epoch(row)
        self.emit(EpochEnded(self.run_folder.id, row))
        self._save_checkpoint(best=improved)
        self.write_status(step=self.step, epoch=self.epoch, elapsed_s=self.elapsed, last_test_err=test_err,
                          best_test_err=self.best_err, images_per_s=row["images_per_s"], epoch_s=row["seconds"],
                          peak_mem_bytes=row["peak_mem_bytes"], lr=row["lr"])

    def _save_checkpoint(self, best: bool = False) -> None:
        state = {
            "format": CHECKPOINT_FORMAT, "config": self.cfg.to_dict(),
            "model": self.model.state_dict(), "optimizer": self.step_fn.optimizer.state_dict(),
            "scaler": self.step_fn.scaler.state_dict(), "schedule": self.schedule.state_dict(),
            "loader": self.train_loader.state_dict(), "rng": rng_state(),
            "step": self.step, "epoch": self.epoch,
            "epoch_sums": list(self.epoch_sums), "window_rows": [list(r) for r in self.window_rows],
            "best_test_err": self.best_err, "elapsed_s": self.elapsed, "channels_last": self.step_fn.channels_last,
            "micro_batches": self.step_fn.micro_batches, "saved_at": now(),
        }
        _atomic_torch_save(state, self.run_folder.checkpoint_path)
        if best:
            _atomic_torch_save({"model": state["model"], "epoch": self.epoch, "test_err": self.best_err,
                                "config": state["config"]}, self.run_folder.best_path)
        self.log(f"checkpoint saved at epoch {self.epoch}, step {self.step}", emit=False)
        self.emit(CheckpointSaved(self.run_folder.id, str(self.run_folder.checkpoint_path), self.epoch, self.step))

    def _load_checkpoint(self) -> dict:
        try:
            return load_checkpoint(self.run_folder.checkpoint_path)
        except Exception as exc:  # noqa: BLE001
            raise _Stop("failed", f"checkpoint.pt cannot be loaded ({exc}); the run cannot resume") from None

    def _restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.step_fn.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.step_fn.scaler.load_state_dict(ckpt["scaler"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.train_loader.load_state_dict(ckpt["loader"])
        set_rng_state(ckpt["rng"])
        self.step, self.epoch = int(ckpt["step"]), int(ckpt["epoch"])
        self.epoch_sums = list(ckpt["epoch_sums"])
        self.window_rows = [tuple(r) for r in ckpt["window_rows"]]
        self.best_err = ckpt.get("best_test_err")
        self.elapsed = float(ckpt.get("elapsed_s", 0.0))
        self.step_fn.micro_batches = int(ckpt.get("micro_batches", 1))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely: tensors and plain containers only (``weights_only=True``), never arbitrary pickles."""
    return torch.load(path, map_location=map_location, weights_only=True)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


# -- conveniences ----------------------------------------------------------------------------------------------------------
def train_run(store: RunStore, cfg: RunConfig, **trainer_kw: Any) -> tuple[Run, str]:
    """Create a run for ``cfg`` in ``store`` and train it in this thread. Raises ConfigError for an invalid config."""
    errors = cfg.validate()
    if errors:
        raise ConfigError(errors)
    run = store.create(cfg)
    return run, Trainer(run, **trainer_kw).run()


def extend_run(run: Run, epochs: int) -> RunConfig:
    """Make a run longer (``resume --epochs N``): rewrites config.json with the new length in epochs."""
    cfg = run.read_config()
    new = cfg.with_overrides(epochs=epochs)
    if cfg.milestone_unit == "iter":
        new = new.with_overrides(milestone_unit="iter")
    errors = new.validate()
    if errors:
        raise ConfigError(errors)
    done = run.info().epochs_done
    if epochs <= done:
        raise ConfigError({"epochs": f"the run has already done {done} epochs; ask for more than {done}"})
    atomic_write_bytes(run.config_path, new.to_json().encode())
    run.update_status(total_epochs=epochs, total_steps=None)
    run.log(f"extended to {epochs} epochs")
    return new
