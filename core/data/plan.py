"""A run's length in iterations before its data is loaded, and the warm-up that length allows.

The trainer knows the exact length once the data is loaded (``core.train.setup.build``); the form needs it earlier, to
say how long a run is and whether its warm-up fits. Both use ``warmup_steps`` so what the form announces is what
the schedule does. No torch here: the form imports this.
"""
from __future__ import annotations

import math
from typing import Any

from core.data.datasets import train_images_in_folder

TRAIN_IMAGES = {"cifar10": 50000, "cifar100": 50000}   # the official training splits
SYNTHETIC_SIZES = (2000, 500)                           # synthetic data: training, test images
WARMUP_MAX_FRACTION = 0.1    # a linear warm-up never takes more than a tenth of the run (the quick preset's 200
                             # iterations are 3% of its 5,865 on CIFAR-10, but all of a 2,000-image run)


def train_images(cfg: Any) -> int:
    """Training images a run of ``cfg`` sees per epoch (after the subset and the validation split): the data
    folder's count when it is there (a subset folder holds fewer), else the official training split's."""
    if cfg.dataset == "synthetic":
        n = cfg.max_train_images or SYNTHETIC_SIZES[0]
    else:
        official = TRAIN_IMAGES.get(cfg.dataset, 50000)
        full = train_images_in_folder(cfg, official) or official
        n = min(full, cfg.max_train_images) if cfg.max_train_images else full
    return max(0, n - cfg.val_split)


def planned_steps(cfg: Any, iters_per_epoch: int | None = None) -> tuple[int, int]:
    """(iterations per epoch, total iterations); iterations per epoch estimated from the data set's size when not
    given (the last partial batch counts, as in the loader)."""
    ipe = iters_per_epoch or max(1, math.ceil(train_images(cfg) / max(1, cfg.batch_size)))
    return ipe, cfg.iterations or cfg.epochs * ipe


def warmup_steps(warmup_iters: int, total_steps: int) -> int:
    """The linear warm-up's length: ``warmup_iters``, capped at a tenth of the run."""
    return max(0, min(int(warmup_iters), int(total_steps * WARMUP_MAX_FRACTION)))


def warmup_error(cfg: Any) -> str:
    """Why a warm-up the user typed cannot be meant ("" when it can): longer than the whole run. One up to the run's
    length is shortened to a tenth of it (said at start), as a preset's is; one past its end is a typo."""
    total = planned_steps(cfg)[1]
    if cfg.warmup_iters <= total:
        return ""
    return (f"{cfg.warmup_iters:,} iterations is longer than the whole run (about {total:,} iterations); a warm-up "
            f"takes at most a tenth of the run ({warmup_steps(cfg.warmup_iters, total):,} here)")
