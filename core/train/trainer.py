"""The training loop: one run folder in, a finished (or stopped, failed, diverged...) run folder out.

``Trainer(run).run()`` trains in the calling thread. It starts fresh when the run has no checkpoint and resumes
exactly otherwise: the checkpoint (core/train/checkpoint.py) holds model, optimizer, scaler, schedule, loader position
and generator, every RNG state and the ``TrainState`` (the partial epoch's sums and seconds, the not-yet-logged
iterations), so a run stopped at any iteration ends with the same weights (bitwise on the CPU with
``deterministic``) and the same per-epoch metrics as an uninterrupted one.

Per iteration nothing is read back from the device: each iteration's loss and error count go into a small device
buffer; every ``log_every`` iterations the buffer is copied to the host asynchronously and read one window later
(``StepWindow``). Stop/pause requests are obeyed between iterations, from ``threading.Event``s, from the run's
request file (another process) or from another process of a DDP run (core/train/requests.py). Under torchrun every
process runs this loop on its share of each batch; only rank 0 writes the run folder (core/train/distributed.py).

Where the rest lives: core/train/setup.py builds model, loaders and step; core/train/step.py is the optimisation step,
the device window and evaluation; core/train/compile_warmup.py compiles a compiled step before the first timed one;
core/train/ending.py says how a run ends; core/train/state.py the resumable state; core/train/device.py devices and
RNGs.
"""
from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from core.data.cifar import load_data
from core.data.datasets import DataError
from core.data.identity import data_identity
from core.spec.config import ConfigError, RunConfig
from core.store import reader
from core.store.runs import HEARTBEAT_S, LockLostError, Run, RunError, RunLockedError, RunStore, now
from core.train import checkpoint, consistency
from core.train.checkpoint import CheckpointError
from core.train.compile_warmup import warm_up
from core.train.device import (
    DeviceError,
    environment,
    is_out_of_memory,
    memory_figures,
    release_memory,
    reset_memory_figures,
    seed_everything,
    set_determinism,
    sync_device,
    use_device,
)
from core.train.distributed import SINGLE, Dist, FollowerRun, check_launch, resolve_launch_device
from core.train.ending import Stop, end_record, outcome_of
from core.train.events import (
    CheckpointSaved,
    Ended,
    EpochEnded,
    EventCallback,
    LogLine,
    Started,
    StateChanged,
    TrainerEvent,
)
from core.train.first_step import FirstStepGuard
from core.train.pace import Reporter, RunClock
from core.train.requests import Requests
from core.train.setup import Setup, build
from core.train.state import TrainState, first_non_finite
from core.train.step import StepRow, StepWindow


class Trainer:
    """Trains one run folder. See the module docstring."""

    def __init__(self, run: Run, on_event: EventCallback | None = None, stop_event: threading.Event | None = None,
                 pause_event: threading.Event | None = None, cpu_threads: int | None = None, lock_held: bool = False,
                 dist: Dist = SINGLE, exit_early: Callable[[], object] | None = None):
        self.dist, self.exit_early = dist, exit_early  # place in a DDP run; ends the process early (first_step.py)
        self.run_folder = run if dist.is_main else FollowerRun(run)
        self.lock_held = lock_held      # the caller took the run's writer lock (`resume` does, before changing it)
        self.cpu_threads = cpu_threads  # CPU runs: torch threads to use (the TUI leaves a core to the interface)
        self.on_event = on_event
        self.requests = Requests(self.run_folder, dist, stop_event, pause_event, self.log)
        self.status: dict[str, Any] = {}
        self.setup: Setup | None = None          # built by _start
        self.train_state = TrainState()
        self.window: StepWindow | None = None
        self.latest: tuple[float | None, float | None] = (None, None)   # the last steps.jsonl point's loss, err
        self.clock: RunClock | None = None       # the epoch's seconds, speed and ETA (core/train/pace.py)
        self.report: Reporter | None = None      # Progress events and the heartbeat
        self.drops: set[int] = set()             # the iterations where a step schedule lowers the lr
        self.last_heartbeat = 0.0
        self.tensorboard = None                  # core.train.tensorboard.TensorBoardLog when cfg.tensorboard
        self.message = ""                        # why the run ended as it did, one line (set by run())
        self.saved: dict | CheckpointError | None = None    # checkpoint.pt as read before the run is marked running
        self.changed: list[str] = []             # settings config.json changed since the checkpoint (for events.log)

    # plumbing ---------------------------------------------------------------------------------------------------------
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
        self.last_heartbeat = time.monotonic()

    def set_state(self, state: str, **fields: Any) -> None:
        try:
            self.write_status(state=state, **fields)
        finally:  # listeners learn the state even when the disk is full
            self.emit(StateChanged(self.run_folder.id, state))

    # entry point ------------------------------------------------------------------------------------------------------
    def run(self) -> str:
        """Train until finished, stopped or failed; returns the final state, ``self.message`` says why in one line.
        Raises RunLockedError (another trainer has the run), RunError (links or folders where its files belong; nothing
        is written) or NotAFileError (``lock`` is one); any other failure, a full disk too, ends in a state."""
        run = self.run_folder
        if run.holds_lock and not self.lock_held:   # this Run object is another trainer's
            raise RunLockedError(f"run {run.id} is being trained by another trainer")
        self.dist.take_lock(run)                    # rank 0's; every process learns whether it got it
        try:
            why = reader.folder_problem(run.path)
            if why:
                raise RunError(f"run {run.id} is damaged: {why}")
            try:
                self.status = run.read_status()
            except (OSError, ValueError):
                self.status = {}
            self.saved, self.changed = consistency.read_checked(run, self.status)   # checked before any write
            guard = self.first_guard = FirstStepGuard(self, self.exit_early)   # a stop before the first step: exit
            try:
                self.requests.take_over(self.status.get("state"))
                self.set_state("running", pid=os.getpid(), ppid=os.getppid(), host=socket.gethostname(),
                               started_at=now(), error=None)
                guard.arm()
                state, message = self._start()
            except Exception as exc:  # noqa: BLE001 - any failure becomes a readable state, never a lost run
                state, message = outcome_of(exc, run.path, self.dist)
            guard.stand_down()
            return self._end(state, message)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            if not self.lock_held:
                run.release_lock()

    def _end(self, state: str, message: str) -> str:
        """Record the end (core/train/ending.py ``end_record``) where it can still be written (not on a full disk,
        nor in a deleted folder)."""
        self.message, fields, line = end_record(state, message)
        for record in (lambda: self.set_state(state, **fields), lambda: self.log(line)):
            try:
                record()
            except (OSError, LockLostError):
                pass
        self.emit(Ended(self.run_folder.id, state, self.message))
        return state

    # start or resume --------------------------------------------------------------------------------------------------
    def _start(self) -> tuple[str, str]:
        cfg, device, data, ckpt = self.dist.all_or_none(self._inputs, lambda problem: Stop("failed", problem))
        self._build(cfg, device, data, ckpt)
        if self.train_state.epoch >= self.setup.total_epochs:
            return "finished", ""
        return self._loop()

    def _inputs(self) -> tuple[RunConfig, torch.device, Any, dict | None]:
        """What this process reads on its own: config, device, data, checkpoint. Raises Stop."""
        run = self.run_folder
        try:
            cfg = run.read_config()            # validated; core/store/reader.py names the file and the problem
        except (OSError, ValueError) as exc:
            raise Stop("failed", str(exc)) from None
        try:
            device = resolve_launch_device(cfg.device, self.dist)
        except DeviceError as exc:
            raise Stop("failed", f"device {exc}") from None
        errors = check_launch(cfg, self.dist.world, device)
        if errors:
            raise Stop("failed", "; ".join(errors.values()))
        if device.type == "cpu" and self.cpu_threads:
            torch.set_num_threads(self.cpu_threads)
        use_device(device)       # before anything touches the GPU: events, streams, caches belong to cuda:N
        set_determinism(cfg, device)
        seed_everything(cfg.seed)
        try:
            data = load_data(cfg)
        except DataError as exc:
            raise Stop("failed", str(exc)) from None
        self.data_identity = data_identity(data)    # what this run trains on (status.json "data", issue 18)
        if isinstance(self.saved, CheckpointError):
            raise Stop("failed", str(self.saved))
        return cfg, device, data, self.saved

    def _build(self, cfg: RunConfig, device: torch.device, data: Any, ckpt: dict | None) -> None:
        run, d, st = self.run_folder, self.dist, self.train_state
        s = self.setup = build(cfg, device, data, channels_last=ckpt["channels_last"] if ckpt else None, dist=d,
                               precision=checkpoint.precision_of(ckpt, cfg, device) if ckpt else None)
        slices = int(ckpt["micro_batches"]) if ckpt else cfg.micro_batches
        if ckpt and cfg.micro_batches > slices:
            self.log(f"micro-batches: {cfg.micro_batches} as the config now asks (the run had {slices})")
            slices = cfg.micro_batches
        if ckpt:
            st = self.train_state = checkpoint.restore(ckpt, s)
            for name, n in run.truncate_logs(st.epoch, st.step).items():
                self.log(f"warning: dropped {n} unreadable line{'s' if n != 1 else ''} of {name}")
            self.log(f"resumed at epoch {st.epoch + 1}, step {st.step} of {s.total_steps} "
                     f"({st.epoch} epoch{'s' if st.epoch != 1 else ''} done)")
            for note in self.changed:
                self.log(note)
        else:
            run.truncate_logs(0, 0)
            self.log(f"started {cfg.label()} on {device} ({s.precision}"
                     f"{', channels_last' if s.channels_last else ''}"
                     f"{', compiled' if s.step.compiled is not None else ''}), {s.train_loader.num_samples} "
                     f"training images, {s.iters_per_epoch} iterations/epoch, {s.total_steps} iterations")
            for line in (s.precision_note, s.format_note):
                if line:
                    self.log(line)
            if s.schedule.warmup < cfg.warmup_iters:
                self.log(f"warm-up shortened from {cfg.warmup_iters} to {s.schedule.warmup} iterations, a tenth of "
                         f"this run's {s.total_steps}")
        if cfg.tensorboard and d.is_main:   # the same rows as steps.jsonl/epochs.jsonl; a crash's extra rows purged
            from core.train.tensorboard import open_run_log

            self.tensorboard = open_run_log(run, st.step)
        for line in d.describe(cfg, slices, s.step.micro_batches):
            self.log(line)
        self.write_status(total_steps=s.total_steps, total_epochs=s.total_epochs, iters_per_epoch=s.iters_per_epoch,
                          step=st.step, epoch=st.epoch, device=str(device), precision=s.precision,
                          precision_note=s.precision_note or self.status.get("precision_note"),   # a resume's: kept
                          channels_last=s.channels_last, micro_batches=s.step.micro_batches, world_size=d.world,
                          devices=d.devices or [str(device)], sync_bn=cfg.sync_bn,
                          env=environment(device), seed=cfg.seed, deterministic=cfg.deterministic,
                          elapsed_s=st.elapsed(), data=self.data_identity)
        self.emit(Started(run.id, resumed=bool(ckpt), step=st.step, total_steps=s.total_steps,
                          epoch=st.epoch, total_epochs=s.total_epochs, iters_per_epoch=s.iters_per_epoch,
                          device=str(device)))

    # the loop ---------------------------------------------------------------------------------------------------------
    def _loop(self) -> tuple[str, str]:
        s, st = self.setup, self.train_state
        warm_up(self)
        self._start_clock()
        while st.epoch < s.total_epochs:
            if st.epoch in s.cfg.rungs and st.step == st.epoch * s.iters_per_epoch and self._held_at_rung():
                return self._stop()      # at a rung's epoch end, also when resumed there (a crash or a promotion)
            # a run stopped right after an epoch's last iteration resumes straight into that epoch's evaluation
            epoch_end = min(s.total_steps, (st.epoch + 1) * s.iters_per_epoch)
            for x, y in (s.train_loader if st.step < epoch_end else ()):
                lr = self._lr()
                total = s.train_loader.last_total     # the global batch (x is this process's share)
                loss, wrong = self._guarded_step(x, y, lr, total)
                self.window.put(loss, wrong, st.step, st.epoch + 1, total, lr)
                st.step += 1
                self.clock.tick()
                sealed = self._read_window()
                self.report.tick(lr)
                self._obey_requests(sealed)
                if self.requests.stopping:
                    return self._stop()
                if st.step >= epoch_end:
                    break
            self._end_epoch()
        return "finished", ""

    def _held_at_rung(self) -> bool:
        """A study's trial at a rung (core/study/driver.py) waits for its driver's request: continue, or stop (True)."""
        self.requests.external_pause = True
        self.write_status(rung_epoch=self.train_state.epoch)
        self._obey_requests(True)
        return self.requests.stopping

    def _start_clock(self) -> None:
        s, cfg = self.setup, self.setup.cfg
        self.window = StepWindow(cfg.log_every, s.device, self.dist.sum_ if self.dist.many else None)
        self.clock = RunClock(cfg.batch_size)
        self.clock.start_epoch(self.train_state.sums.seconds)   # a resumed epoch counts on from its seconds so far
        self.report = Reporter(self, self.clock)
        self.requests.last_poll = self.last_heartbeat = self.clock.now()
        self.drops = set(s.schedule.boundaries())
        reset_memory_figures(s.device)

    def _lr(self) -> float:
        st = self.train_state
        lr = self.setup.schedule.lr(st.step)
        if st.step > 0 and st.step in self.drops:
            self.log(f"lr dropped to {lr:g} at step {st.step}")
        return lr

    def _read_window(self) -> bool:
        """Seal the device window every ``log_every`` iterations and read the one before it (one window late).
        True when it sealed one (under DDP the processes then agree on requests too)."""
        cfg = self.setup.cfg
        if not (self.window.full or self.train_state.step % cfg.log_every == 0):
            return False
        self.window.seal()
        # read now (one sync) while the paper's warm-up watches the error, so the switch happens at a fixed
        # step, and for the run's first window, so the loss shows from its first log_every
        now = self.setup.schedule.watching_error or self.latest[0] is None
        self._absorb(self.window.drain(keep=0 if now else 1))
        return True

    def _obey_requests(self, sealed: bool) -> None:
        self.requests.check(sealed)
        if self.requests.paused:
            self.clock.resume_after(self._hold())

    def _guarded_step(self, x, y, lr, total):
        """One step; on CUDA out-of-memory (or a cuDNN/cuBLAS allocation failure) split the batch into more
        micro-batches (``Setup.split_after_oom``) or stop. Under DDP the other processes learn why
        (``Dist.tell``), so rank 0 records out-of-memory rather than a lost peer."""
        s = self.setup
        while True:
            try:
                return s.step(x, y, lr, total)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
            # out of the except block: its traceback, which held the failed step's tensors, is gone
            s.step.reset_after_failure()
            release_memory(s.device)
            note = s.split_after_oom()
            if not note.startswith("continuing"):
                self.dist.tell(f"out-of-memory: {note}")
                raise Stop("out-of-memory", note)
            self.log(f"out of memory at batch {s.cfg.batch_size}: {note}")
            self.write_status(micro_batches=s.step.micro_batches)

    def _absorb(self, rows: list[StepRow]) -> None:
        """Take iterations read back from the device: epoch sums, steps.jsonl points, divergence, error warm-up."""
        if not rows:
            return
        bad = first_non_finite(rows)
        if bad is not None:
            self.train_state.pending = []
            raise Stop("diverged", f"loss became {bad.loss} at step {bad.step + 1} (epoch {bad.epoch}, "
                                    f"lr {bad.lr:g}); try a lower --lr or a warm-up")
        s = self.setup
        points = self.train_state.absorb(rows, s.cfg.log_every, s.iters_per_epoch, s.total_steps)
        for p in points:
            self.latest = (p.loss, p.err)
            if s.schedule.watching_error and s.schedule.observe_train_error(p.step, p.err):
                self.log(f"warm-up done: training error {p.err:.1f}% < 80% at step {p.step}; lr back to "
                         f"{s.cfg.lr:g} (He et al. 2016, ResNet-110 recipe)")
        lines = [p.row() for p in points]
        self.run_folder.append_steps(lines)
        if self.tensorboard is not None:
            self.tensorboard.steps(lines)

    def _flush(self) -> None:
        self.window.seal()
        self._absorb(self.window.drain(keep=0))

    def latest_fields(self) -> dict[str, float | None]:
        """status.json's last logged loss and training error (what the monitor of an ended run shows)."""
        return {"last_loss": self.latest[0], "last_err": self.latest[1]}

    # requests: pause, continue, stop ----------------------------------------------------------------------------------
    def _hold(self) -> float:
        """Paused: keep heartbeats and request polling going; nothing is freed. Returns the seconds held."""
        t0 = time.monotonic()
        self._flush()
        self.set_state("paused", step=self.train_state.step, elapsed_s=self.report.elapsed())
        self.log(f"paused at {self.train_state.position(self.setup.iters_per_epoch)}")

        def heartbeat() -> None:
            if time.monotonic() - self.last_heartbeat >= HEARTBEAT_S:
                self.write_status()

        self.requests.wait_while_paused(heartbeat)
        held = time.monotonic() - t0
        if not self.requests.stopping:
            self.set_state("running")
            self.log(f"continued at {self.train_state.position(self.setup.iters_per_epoch)}")
        return held

    def _stop(self) -> tuple[str, str]:
        st = self.train_state
        self._flush()
        st.sums.seconds = self.clock.epoch_seconds()
        self._save_checkpoint()
        self.write_status(step=st.step, epoch=st.epoch, elapsed_s=st.elapsed(), **self.latest_fields())
        return "stopped", f"stopped at {self.train_state.position(self.setup.iters_per_epoch)}; resumable"

    # epochs and checkpoints -------------------------------------------------------------------------------------------
    def _end_epoch(self) -> None:
        s, st = self.setup, self.train_state
        sync_device(s.device)     # the epoch's work done: its seconds, then its last window (read after the sync)
        st.sums.seconds = train_seconds = self.clock.epoch_seconds()
        self._flush()
        t0 = time.monotonic()
        scores = s.evaluate()
        while s.notes:
            self.log(s.notes.pop(0))
        if bad := next((f"the {k} loss became {v[0]}" for k, v in scores.items() if not math.isfinite(sum(v))), None):
            raise Stop("diverged", f"{bad} at the end of epoch {st.epoch + 1}; try a lower --lr or a warm-up")
        eval_seconds = self.clock.last_eval_s = time.monotonic() - t0
        row = st.epoch_row(scores, train_seconds, eval_seconds, s.schedule.lr(max(0, st.step - 1)))
        row.update(memory_figures(s.device))        # this epoch's peaks (training and evaluation)
        test_err = scores["test"][1]
        if "val" in scores and (decay := s.schedule.observe_val_error(st.epoch + 1, st.step, scores["val"][1])):
            self.log(decay)                           # the plateau schedule divided the rate (core/train/optim.py)
        st.end_epoch(eval_seconds)
        improved = st.best_test_err is None or test_err < st.best_test_err
        if improved:
            st.best_test_err = test_err
        self.run_folder.append_epoch(row)
        if self.tensorboard is not None:
            self.tensorboard.epoch(row)
        self.emit(EpochEnded(self.run_folder.id, row))
        self._save_checkpoint(best=improved)
        self.write_status(step=st.step, epoch=st.epoch, elapsed_s=st.elapsed(), last_test_err=test_err,
                          best_test_err=st.best_test_err, images_per_s=row["images_per_s"], epoch_s=row["seconds"],
                          peak_mem_bytes=row["peak_mem_bytes"], reserved_mem_bytes=row["reserved_mem_bytes"],
                          lr=row["lr"], **self.latest_fields())
        reset_memory_figures(s.device)
        self.clock.start_epoch()

    def _save_checkpoint(self, best: bool = False) -> None:
        run, st = self.run_folder, self.train_state
        if not self.dist.is_main:
            return
        run.check_still_ours()      # never overwrite a checkpoint another process owns (its lock file was deleted)
        checkpoint.save(run.checkpoint_path, self.setup, st, run.best_path if best else None)
        self.log(f"checkpoint saved at {self.train_state.position(self.setup.iters_per_epoch)}", emit=False)
        self.emit(CheckpointSaved(run.id, str(run.checkpoint_path), st.epoch, st.step))


# -- conveniences ------------------------------------------------------------------------------------------------------
def train_run(store: RunStore, cfg: RunConfig, **trainer_kw: Any) -> tuple[Run, str]:
    """Create a run for ``cfg`` in ``store`` and train it in this thread. Raises ConfigError for an invalid config."""
    errors = cfg.validate()
    if errors:
        raise ConfigError(errors)
    run = store.create(cfg)
    return run, Trainer(run, **trainer_kw).run()
