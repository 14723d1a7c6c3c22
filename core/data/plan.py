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


def milestone_error(cfg: Any, iters_per_epoch: int | None = None) -> str | None:
    """What is wrong with a multistep schedule's milestones for this run's planned length, the same rule for
    iteration and epoch milestones (RunConfig.validate checks those it can without the data's size): a milestone at
    or past the run's end never divides the rate. The message says what to pass: the paper's places, half and three
    quarters of the run (32000 and 48000 of 64000 iterations). None when they fit."""
    if cfg.schedule != "multistep" or not cfg.milestones:
        return None
    ipe, total = planned_steps(cfg, iters_per_epoch)
    by_epoch = cfg.milestone_unit == "epoch"
    end = math.ceil(total / ipe) if by_epoch else total
    if cfg.milestones[-1] < end:
        return None
    unit = "epoch" if by_epoch else "iteration"
    about = f", about {total:,} iterations" if not by_epoch else ""
    length = f"{cfg.iterations:,} iterations" if cfg.iterations else \
        f"{cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}{about}"
    fit = sorted({max(1, round(end * f)) for f in (0.5, 0.75)} - {end}) if end > 1 else []
    fix = (f"pass milestones inside it, e.g. {','.join(map(str, fit))} ({unit}s: half and three quarters of the "
           f"run, as the paper's 32000,48000 of 64000)") if fit else "use schedule constant or a longer run"
    return (f"milestones {','.join(map(str, cfg.milestones))} ({unit}s) lie past the end of this run ({length}): "
            f"the rate would never drop; {fix}")


def _length(cfg: Any) -> int:
    """The run's length in its milestones' unit (epochs or iterations), from the data's planned size."""
    ipe, total = planned_steps(cfg)
    return math.ceil(total / ipe) if cfg.milestone_unit == "epoch" else total


def scale_milestones(cfg: Any, recipe: Any) -> tuple[Any, str | None]:
    """A recipe shortened without new milestones (``--epochs 6`` on the lab report's 164 epochs, ``--iterations 20``
    on the paper's 64000): its milestones moved to the same fractions of this run, and the sentence that says so.
    ``recipe`` is the config before the length was changed. Unchanged (and no sentence) when they fit already or
    the recipe's length is the run's."""
    if cfg.schedule != "multistep" or not cfg.milestones or cfg.milestones != recipe.milestones:
        return cfg, None
    if cfg.milestone_unit == "epoch" and not cfg.iterations:
        if cfg.milestones[-1] < cfg.epochs:
            return cfg, None
    elif milestone_error(cfg) is None:
        return cfg, None
    old_len, new_len = _length(recipe), _length(cfg)
    if old_len <= new_len:
        return cfg, None
    moved = [m for m in sorted({round(m * new_len / old_len) for m in cfg.milestones}) if 1 <= m < new_len]
    unit = "epoch" if cfg.milestone_unit == "epoch" else "iteration"
    scaled = cfg.with_overrides(milestones=tuple(moved), milestone_unit=cfg.milestone_unit)
    old = ",".join(map(str, cfg.milestones))
    return scaled, (f"milestones scaled from {old} of {old_len:,} {unit}s to {','.join(map(str, moved)) or 'none'} "
                    f"of this run's {new_len:,} (the same fractions); pass milestones to choose them")
