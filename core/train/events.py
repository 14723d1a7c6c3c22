"""Events the trainer reports to whoever listens (CLI progress, TUI). Plain dataclasses, no UI code.

Progress arrives at most a few times a second and never forces a device sync: its loss/err are the latest values
already read back from the device (they lag by up to ``log_every`` iterations on a GPU).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainerEvent:
    run_id: str


@dataclass
class Started(TrainerEvent):
    resumed: bool = False
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    total_epochs: int = 0
    iters_per_epoch: int = 0
    device: str = "cpu"


@dataclass
class Progress(TrainerEvent):
    epoch: int = 0                 # the epoch in progress, 1-based
    total_epochs: int = 0
    iter_in_epoch: int = 0         # iterations done in this epoch
    iters_per_epoch: int = 0
    step: int = 0                  # iterations done in the whole run
    total_steps: int = 0
    loss: float | None = None
    err: float | None = None    # training error of recent iterations, %
    lr: float = 0.0
    images_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float = 0.0


@dataclass
class EpochEnded(TrainerEvent):
    row: dict = field(default_factory=dict)   # the epochs.jsonl row


@dataclass
class CheckpointSaved(TrainerEvent):
    path: str = ""
    epoch: int = 0
    step: int = 0


@dataclass
class StateChanged(TrainerEvent):
    state: str = "running"


@dataclass
class LogLine(TrainerEvent):
    message: str = ""


@dataclass
class Ended(TrainerEvent):
    state: str = "finished"
    message: str = ""


EventCallback = Callable[[TrainerEvent], Any]
