"""From a config to the objects that train and evaluate it: ``build(cfg, device) -> Setup``.

The one place where the data, the model, its memory format, the loaders, the optimizer, the schedule and the
step are put together; the trainer, ``eval`` (cli/evaluate.py) and bench/throughput.py all call it, so the
three measure the same thing. Seeding is the caller's job (the trainer seeds before calling, so a run's
initial weights depend on its seed only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .config import RunConfig
from .data import DataSplits, load_data
from .device import resolve_precision
from .loader import DeviceLoader, normalization_stats
from .memory_format import choose_channels_last
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
