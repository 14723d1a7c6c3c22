"""Optimizers and per-iteration learning-rate schedules.

The schedule is a pure function of the iteration (plus one bit of state for the paper's error warm-up), so a
resumed run sees exactly the rates an uninterrupted one would.

He et al. 2016, sec. 4.2: lr 0.1, divided by 10 at 32k and 48k iterations; for ResNet-110, 0.01 "to warm up the
training until the training error is below 80% (about 400 iterations), and then go back to 0.1".

``plateau`` (the lab report's conclusion: "divide the rate once the accuracy oscillates") is the one schedule that
depends on the run's results: ``observe_val_error`` after each epoch's evaluation multiplies the rate by
``lr_factor`` (not below ``min_lr``) once the validation error has gone ``plateau_patience`` epochs in a row without
coming ``plateau_threshold`` points below the best so far; ``plateau_cooldown`` epochs after a decay are not counted.
That is torch's ReduceLROnPlateau (mode min, threshold_mode abs) except that it decays after ``patience`` epochs
without improvement, not ``patience + 1``. Its counters are the schedule's state, checkpointed with it, so a resumed
run decays where the uninterrupted one does.
"""
from __future__ import annotations

import math

import torch

from core.data.plan import warmup_steps
from core.spec.config import RunConfig

ERROR_WARMUP_FACTOR = 0.1      # 0.01 / 0.1 in the paper
ERROR_WARMUP_THRESHOLD = 80.0  # training error, %


def build_optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    """SGD (momentum / Nesterov), Adam or AdamW; fused kernels on CUDA, foreach elsewhere."""
    params = [p for p in model.parameters() if p.requires_grad]
    fast = {"fused": True} if device.type == "cuda" else {"foreach": True}
    if cfg.optimizer in ("sgd", "nesterov"):
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.optimizer == "nesterov" and cfg.momentum > 0, **fast)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                weight_decay=cfg.weight_decay, **fast)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps,
                                 weight_decay=cfg.weight_decay, **fast)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


class LRSchedule:
    """Learning rate for iteration ``step`` (0-based: the iteration about to run)."""

    def __init__(self, cfg: RunConfig, iters_per_epoch: int, total_steps: int):
        self.base = cfg.lr
        self.kind = cfg.schedule
        self.factor = cfg.lr_factor
        self.min_lr = cfg.min_lr
        self.warmup = warmup_steps(cfg.warmup_iters, total_steps)   # at most a tenth of the run
        self.total = max(1, total_steps)
        scale = iters_per_epoch if cfg.milestone_unit == "epoch" else 1
        self.milestones = [int(m) * scale for m in cfg.milestones]
        self.error_warmup = cfg.uses_error_warmup()
        self.warm_done = not self.error_warmup     # paper warm-up finished (or not used)
        self.warm_done_at: int | None = None
        self.plateau = Plateau(cfg.plateau_patience, cfg.plateau_threshold, cfg.plateau_cooldown)

    def lr(self, step: int) -> float:
        if self.kind == "multistep":
            lr = self.base * self.factor ** sum(step >= m for m in self.milestones)
        elif self.kind == "plateau":
            lr = max(self.min_lr, self.base * self.factor ** self.plateau.decays_before(step))
        elif self.kind == "cosine":
            t = min(1.0, max(0, step - self.warmup) / max(1, self.total - self.warmup))
            lr = self.min_lr + (self.base - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        else:
            lr = self.base
        if step < self.warmup:
            lr *= (step + 1) / self.warmup
        if not self.warm_done:
            lr *= ERROR_WARMUP_FACTOR
        return lr

    @property
    def watching_error(self) -> bool:
        """True while the paper's warm-up waits for the training error to drop under 80%."""
        return not self.warm_done

    def observe_train_error(self, step: int, err_percent: float) -> bool:
        """Feed the recent training error; returns True when this ends the warm-up."""
        if not self.warm_done and err_percent < ERROR_WARMUP_THRESHOLD:
            self.warm_done, self.warm_done_at = True, step
            return True
        return False

    def observe_val_error(self, epoch: int, step: int, err: float) -> str | None:
        """Feed the validation error (%) of the epoch just ended (``step``: iterations done); for plateau, returns
        the log line when this decays the rate (from iteration ``step`` on), else None."""
        if self.kind != "plateau":
            return None
        before = self.lr(step)
        if not self.plateau.observe(step, err):
            return None
        if before <= self.min_lr:                     # already at the floor: nothing to divide
            self.plateau.decay_steps.pop()
            return None
        return (f"lr divided by {1 / self.factor:g} to {self.lr(step):g} after epoch {epoch} (step {step}): validation "
                f"error {err:.2f}% not {self.plateau.threshold:g} points below the best, {self.plateau.best:.2f}%, "
                f"for {self.plateau.patience} epoch{'s' if self.plateau.patience != 1 else ''}")

    def state_dict(self) -> dict:
        return {"warm_done": self.warm_done, "warm_done_at": self.warm_done_at, "plateau": self.plateau.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.warm_done = bool(state.get("warm_done", self.warm_done))
        self.warm_done_at = state.get("warm_done_at")
        self.plateau.load_state_dict(state.get("plateau") or {})

    def boundaries(self) -> list[int]:
        """Iterations where a multistep schedule drops the rate (for 'lr dropped' log lines)."""
        return list(self.milestones) if self.kind == "multistep" else []


class Plateau:
    """The plateau rule's counters: the best validation error so far, the epochs since it last improved, the cooldown
    left and the iterations from which each decay applies (plain values: they go into the checkpoint)."""

    def __init__(self, patience: int, threshold: float, cooldown: int):
        self.patience, self.threshold, self.cooldown = patience, threshold, cooldown
        self.best: float | None = None
        self.bad_epochs = 0
        self.cooldown_left = 0
        self.decay_steps: list[int] = []

    def decays_before(self, step: int) -> int:
        """Decays in force at iteration ``step`` (0-based: the one about to run)."""
        return sum(step >= s for s in self.decay_steps)

    def observe(self, step: int, err: float) -> bool:
        """One epoch's validation error; True when it decays the rate from iteration ``step`` on."""
        if self.best is None or err < self.best - self.threshold:
            self.best, self.bad_epochs = err, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs < self.patience:
            return False
        self.decay_steps.append(step)
        self.bad_epochs, self.cooldown_left = 0, self.cooldown
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "cooldown_left": self.cooldown_left,
                "decay_steps": list(self.decay_steps)}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.bad_epochs = int(state.get("bad_epochs", 0))
        self.cooldown_left = int(state.get("cooldown_left", 0))
        self.decay_steps = [int(s) for s in state.get("decay_steps", [])]
