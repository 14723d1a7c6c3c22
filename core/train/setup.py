"""From a config to the objects that train and evaluate it: ``build(cfg, device) -> Setup``.

The one place where the data, the model, its memory format, the loaders, the optimizer, the schedule and the
step are put together; the trainer, ``eval`` (cli/evaluate.py) and bench/throughput.py all call it, so the
three measure the same thing. Seeding is the caller's job (the trainer seeds before calling, so a run's
initial weights depend on its seed only). Under DDP (core/train/distributed.py) the same call on every process builds
the same model, wraps it for the process group and gives each process its shard of every batch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from core.data.cifar import DataSplits, load_data
from core.data.loader import DeviceLoader, normalization_stats
from core.spec.config import RunConfig
from core.train.device import is_out_of_memory, release_memory
from core.train.distributed import SINGLE, Dist, micro_batches_for
from core.train.memory_format import choose_channels_last, cpu_hazard
from core.train.models import create_model
from core.train.optim import LRSchedule, build_optimizer
from core.train.precision import choose_precision
from core.train.step import TrainStep, evaluate

MIN_EVAL_BATCH = 32    # evaluation's batch is halved after an out-of-memory, down to this
EVAL_BATCH = 1000
# torch.compile's settings per `compile` choice (core/spec/config.py COMPILE_MODES). reduce-overhead: CUDA graphs
# replay the compiled forward and backward each as one launch (ResNet-20 at batch 128 is bound by ~200 kernel launches
# a step on an H100/H200); shapes fixed, which the compiled path guarantees (full batches only). On a CPU torch skips
# the graphs ("skipping cudagraphs due to cpu device") and runs the same code as default.
COMPILE_MODES = {"default": {}, "reduce-overhead": {"mode": "reduce-overhead", "dynamic": False}}


@dataclass
class Setup:
    cfg: RunConfig
    device: torch.device
    data: DataSplits
    precision: str                       # resolved: fp32, bf16 or fp16
    model: torch.nn.Module
    channels_last: bool
    format_note: str                     # how channels_last was measured ("" when it was not)
    test_loader: DeviceLoader
    val_loader: DeviceLoader | None
    # for training only (None / 0 when built with train=False)
    train_loader: DeviceLoader | None = None
    step: TrainStep | None = None        # holds the optimizer, the gradient scaler and the compiled model
    schedule: LRSchedule | None = None
    iters_per_epoch: int = 0
    total_steps: int = 0
    total_epochs: int = 0
    dist: Dist = field(default_factory=lambda: SINGLE)
    notes: list[str] = field(default_factory=list)      # what changed while training, for the run's events.log
    precision_note: str = ""             # why this precision (auto on a CPU) or a warning ("" when nothing to say)

    def set_micro_batches(self, slices: int) -> int:
        """Cut each global batch into ``slices`` micro-batches (more under DDP without --sync-bn, where every process
        trains whole slices: the least multiple of the world size); returns the count in use.

        The one mechanism behind --micro-batches, the split after an out-of-memory, and the DDP shards: this process
        trains slices [first, first + count) with gradient accumulation. With --sync-bn the processes normalise
        together, so each takes 1/world of the batch and cuts its part into ``slices`` micro-batches."""
        d = self.dist
        slices = micro_batches_for(self.cfg, d.world, slices)
        if d.world > 1 and self.cfg.sync_bn:
            self.step.chunks, self.train_loader.shard = slices, (d.rank, 1, d.world)
        else:
            per = slices // d.world
            self.step.chunks, self.train_loader.shard = per, (d.rank * per, per, slices)
        self.step.micro_batches = slices
        return slices

    def evaluate(self) -> dict[str, tuple[float, float]]:
        """(loss, error %) of the test split, and of the validation split when there is one. Under DDP each process
        evaluates its shard with rank 0's batch-norm statistics (those DDP keeps) and the sums are all-reduced."""
        d = self.dist
        d.sync_buffers(self.model)
        splits = (("test", self.test_loader), ("val", self.val_loader))
        return {name: self._evaluate(loader) for name, loader in splits if loader is not None}

    def _evaluate(self, loader: DeviceLoader) -> tuple[float, float]:
        """One split; on an out-of-memory (one process: under DDP the others would wait in a collective) the split
        is evaluated again in batches half as large, down to MIN_EVAL_BATCH, and ``notes`` says so."""
        while True:
            try:
                return evaluate(self.model, loader, self.step, self.dist.sum_ if self.dist.many else None)
            except Exception as exc:
                if not is_out_of_memory(exc) or self.dist.many or loader.batch_size <= MIN_EVAL_BATCH:
                    raise
            release_memory(self.device)
            loader.rebatch(max(MIN_EVAL_BATCH, loader.batch_size // 2))
            self.notes.append(f"out of memory in evaluation: evaluating in batches of {loader.batch_size}")

    def split_after_oom(self) -> str:
        """After a CUDA out-of-memory: twice the micro-batches (the same effective batch), where the config allows it
        and one process trains (under DDP the processes cannot agree on a split in the middle of a step). Returns
        the log line ("continuing with ..."), else the advice the run stops with."""
        cfg, step = self.cfg, self.step
        if self.dist.many:
            return (f"out of memory on process {self.dist.rank} of {self.dist.world}; resume with --micro-batches "
                    f"{2 * step.micro_batches}")
        if cfg.on_oom != "split" or step.micro_batches >= cfg.batch_size:
            return (f"out of memory at batch size {cfg.batch_size} ({cfg.label()}, "
                    f"{step.precision}); try a smaller --batch-size, --precision bf16, or on_oom=split")
        self.set_micro_batches(min(cfg.batch_size, step.micro_batches * 2))
        per = math.ceil(cfg.batch_size / step.micro_batches)
        return (f"continuing with {step.micro_batches} micro-batches of {per} and gradient accumulation (same "
                f"effective batch; batch-norm statistics now use {per} images)")


def build(cfg: RunConfig, device: torch.device, data: DataSplits | None = None, *, train: bool = True,
          channels_last: bool | None = None, eval_batch: int = EVAL_BATCH, dist: Dist = SINGLE,
          precision: str | None = None) -> Setup:
    """Load the data (unless given; raises DataError), build the model and the loaders on ``device``.

    ``channels_last``: None = the config's choice (measured on this device when ``auto`` and training; under
    DDP rank 0's measurement decides for all). ``precision``: None = the config's choice (``auto`` on a CPU with bf16
    hardware: measured when training, core/train/precision.py); a resumed run passes its checkpoint's.
    ``train=False`` builds only what evaluation needs: the model and the test/validation loaders. ``dist``: this
    process's place in a DDP run (collectives inside).
    """
    data = data if data is not None else load_data(cfg)
    mean, std = normalization_stats(data.train_x, cfg.normalize)
    model = create_model(cfg.arch, cfg.depth, cfg.shortcut, cfg.width, cfg.dropout, data.num_classes,
                         widths=cfg.widths, stem_width=cfg.stem_width, init=cfg.init).to(device)
    precision_line = ""
    if precision is None:    # as channels_last: rank 0 measures, its answer for all
        precision, precision_line = choose_precision(cfg, model, device, measure=train and dist.is_main)
        precision, precision_line = dist.from_main((precision, precision_line))
    note = ""
    if channels_last is None:
        # measured by rank 0 alone (N processes timing at once would measure each other), its answer for all
        measure = train and dist.is_main
        channels_last, note = choose_channels_last(cfg, model, device, precision) if measure else (False, "")
        channels_last, note = dist.from_main((channels_last, note))
    hazard = cpu_hazard(model, device) if channels_last else ""
    if hazard:                                     # --channels-last on, or a checkpoint made on a GPU
        channels_last, note = False, f"memory format: channels_last off, as it must be here: {hazard}"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    kw = dict(device=device, mean=mean, std=std, channels_last=channels_last)
    train_loader = (DeviceLoader(data.train_x, data.train_y, cfg.batch_size, shuffle=True, augment=cfg.augment,
                                 seed=cfg.seed, **kw) if train else None)
    test = DeviceLoader(data.test_x, data.test_y, eval_batch, shuffle=False, augment=False, **kw)
    val = (DeviceLoader(data.val_x, data.val_y, eval_batch, shuffle=False, augment=False, **kw)
           if data.val_x is not None else None)
    for loader in (test, val):
        if loader is not None:
            loader.shard = (dist.rank, 1, dist.world)
    setup = Setup(cfg, device, data, precision, model, channels_last, note, test, val, dist=dist,
                  precision_note=precision_line)
    if not train:
        return setup
    ipe = len(train_loader)
    total_steps = cfg.iterations or cfg.epochs * ipe
    optimizer = build_optimizer(model, cfg, device)
    schedule = LRSchedule(cfg, ipe, total_steps)
    net = dist.wrap(model, cfg.sync_bn)
    compiled = compile_net(net, cfg.compile)
    setup.train_loader, setup.schedule = train_loader, schedule
    setup.step = TrainStep(model, optimizer, device, precision, channels_last, compiled, cfg.batch_size, net,
                           dist.world, graphs=cfg.compile == "reduce-overhead")
    setup.step.one_hot_loss = cfg.deterministic and device.type == "cuda"
    setup.set_micro_batches(cfg.micro_batches)
    setup.iters_per_epoch, setup.total_steps, setup.total_epochs = ipe, total_steps, math.ceil(total_steps / ipe)
    return setup


def compile_net(net: torch.nn.Module, mode: str) -> torch.nn.Module | None:
    """``torch.compile`` of the training module, None for ``off``. Dynamo's caches are emptied first: a process that
    trains runs one after another (the app's in-process queue) would otherwise keep every earlier run's graphs (and
    their CUDA graph pools) and, past ``torch._dynamo.config.cache_size_limit`` nets of one class, silently run
    eager."""
    if mode == "off":
        return None
    torch._dynamo.reset()
    return torch.compile(net, **COMPILE_MODES[mode])
