"""From a config to the objects that train and evaluate it: ``build(cfg, device) -> Setup``.

The one place where the data, the model, its memory format, the loaders, the optimizer, the schedule and the
step are put together; the trainer, ``eval`` (cli/evaluate.py) and bench/throughput.py all call it, so the
three measure the same thing. Seeding is the caller's job (the trainer seeds before calling, so a run's
initial weights depend on its seed only).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import torch

from .config import RunConfig
from .data import DataSplits, load_data
from .device import resolve_precision, sync_device
from .loader import DeviceLoader, normalization_stats
from .models import cifar_resnet
from .optim import LRSchedule, build_optimizer
from .step import TrainStep

EVAL_BATCH = 1000


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


def build(cfg: RunConfig, device: torch.device, data: DataSplits | None = None, *, train: bool = True,
          channels_last: bool | None = None, eval_batch: int = EVAL_BATCH) -> Setup:
    """Load the data (unless given; raises DataError), build the model and the loaders on ``device``.

    ``channels_last``: None = the config's choice (measured on this device when ``auto`` and training).
    ``train=False`` builds only what evaluation needs: the model and the test/validation loaders.
    """
    data = data if data is not None else load_data(cfg)
    precision = resolve_precision(cfg.precision, device)
    mean, std = normalization_stats(data.train_x, cfg.normalize)
    model = cifar_resnet(cfg.depth, cfg.shortcut, cfg.width, num_classes=data.num_classes).to(device)
    note = ""
    if channels_last is None:
        channels_last, note = choose_channels_last(cfg, model, device, precision) if train else (False, "")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    kw = dict(device=device, mean=mean, std=std, channels_last=channels_last)
    train_loader = (DeviceLoader(data.train_x, data.train_y, cfg.batch_size, shuffle=True, augment=cfg.augment,
                                 seed=cfg.seed, **kw) if train else None)
    test = DeviceLoader(data.test_x, data.test_y, eval_batch, shuffle=False, augment=False, **kw)
    val = (DeviceLoader(data.val_x, data.val_y, eval_batch, shuffle=False, augment=False, **kw)
           if data.val_x is not None else None)
    setup = Setup(cfg, device, data, precision, model, channels_last, note, test, val)
    if not train:
        return setup
    ipe = len(train_loader)
    total_steps = cfg.iterations or cfg.epochs * ipe
    optimizer = build_optimizer(model, cfg, device)
    schedule = LRSchedule(cfg, ipe, total_steps)
    compiled = torch.compile(model) if cfg.compile else None
    setup.train_loader, setup.schedule = train_loader, schedule
    setup.step = TrainStep(model, optimizer, device, precision, channels_last, compiled, cfg.batch_size)
    setup.iters_per_epoch, setup.total_steps, setup.total_epochs = ipe, total_steps, math.ceil(total_steps / ipe)
    return setup


def choose_channels_last(cfg: RunConfig, model: torch.nn.Module, device: torch.device,
                         precision: str) -> tuple[bool, str]:
    """The config's memory format: on, off, or (auto) measured here; returns it with a note for the log."""
    if cfg.channels_last != "auto":
        return cfg.channels_last == "on", ""
    if cfg.deterministic:
        return False, ""
    try:
        choice, detail = measure_channels_last(model, device, precision, cfg.batch_size)
    except torch.OutOfMemoryError:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        choice, detail = False, "not measured: the probe ran out of memory"
    return choice, f"memory format: channels_last {'on' if choice else 'off'} ({detail})"


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
