"""The trainer's resumable state (``TrainState``): what a checkpoint must hold besides the weights, the optimizer,
the schedule, the loader and the RNGs, so that a resumed run goes on exactly where it stopped.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from core.train.step import StepRow


@dataclass
class EpochSums:
    """The epoch in progress, from which its train_loss, train_err, seconds and images_per_s are computed."""

    loss_sum: float = 0.0    # sum of (batch mean loss * batch size)
    wrong: float = 0.0       # wrong predictions
    images: int = 0          # images trained on
    seconds: float = 0.0     # training seconds (pauses and compile time excluded), carried across stop/resume

    def add(self, row: StepRow) -> None:
        self.loss_sum += row.loss * row.images
        self.wrong += row.wrong
        self.images += row.images


class StepPoint(NamedTuple):
    """One line of steps.jsonl: the iterations since the previous point, averaged."""

    step: int        # iterations done (1-based step of the last one)
    epoch: int
    loss: float
    err: float       # %
    lr: float

    def row(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "loss": round(self.loss, 6), "err": round(self.err, 4),
                "lr": float(f"{self.lr:.6g}")}


@dataclass
class TrainState:
    step: int = 0                    # iterations done in the whole run
    epoch: int = 0                   # epochs done
    sums: EpochSums = field(default_factory=EpochSums)
    pending: list[StepRow] = field(default_factory=list)   # read back from the device, not yet in steps.jsonl
    best_test_err: float | None = None
    elapsed_s: float = 0.0           # seconds of the epochs done (training and evaluation); see ``elapsed``

    def position(self, iters_per_epoch: int) -> str:
        """Where training is, counted one way in every log line: the epoch in progress (1-based), or the one that
        just ended, and the iterations done ("epoch 2, step 59 (19/40 of the epoch)", "epoch 1, step 40 (done)")."""
        into = self.step - self.epoch * iters_per_epoch
        if into <= 0 and self.epoch:
            return f"epoch {self.epoch}, step {self.step} (epoch done)"
        return f"epoch {self.epoch + 1}, step {self.step} ({into}/{iters_per_epoch} of the epoch)"

    def elapsed(self) -> float:
        """The run's seconds so far, the epoch in progress included (as far as ``sums.seconds`` counts it)."""
        return self.elapsed_s + self.sums.seconds

    def absorb(self, rows: list[StepRow], log_every: int, iters_per_epoch: int, total_steps: int) -> list[StepPoint]:
        """Take iterations read back from the device into the epoch's sums; return the steps.jsonl points they close
        (one at every multiple of ``log_every``, at the end of each epoch and of the run, and at the last iteration
        before the learning rate jumps: a drop inside a log interval shows where it happened in the lr curves)."""
        for row in rows:
            if row.epoch == self.epoch + 1:
                self.sums.add(row)
            self.pending.append(row)
        points = []
        while True:
            cut = next((i for i, r in enumerate(self.pending)
                        if (r.step + 1) % log_every == 0 or (r.step + 1) % iters_per_epoch == 0
                        or r.step + 1 == total_steps
                        or i + 1 < len(self.pending) and lr_jumps(r.lr, self.pending[i + 1].lr)), None)
            if cut is None:
                return points
            part, self.pending = self.pending[:cut + 1], self.pending[cut + 1:]
            n = sum(r.images for r in part)
            last = part[-1]
            points.append(StepPoint(last.step + 1, last.epoch, sum(r.loss * r.images for r in part) / n,
                                    100.0 * sum(r.wrong for r in part) / n, last.lr))

    def epoch_row(self, scores: dict[str, tuple[float, float]], train_seconds: float, eval_seconds: float,
                  lr: float) -> dict[str, Any]:
        """epochs.jsonl's line for the epoch in progress: its sums, the evaluation's (loss, err %) per split."""
        images = self.sums.images
        row: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step,
                               "train_loss": round(self.sums.loss_sum / max(1, images), 6),
                               "train_err": round(100.0 * self.sums.wrong / max(1, images), 4)}
        for split in ("test", "val"):
            if split in scores:
                row[f"{split}_loss"], row[f"{split}_err"] = round(scores[split][0], 6), round(scores[split][1], 4)
        row["lr"] = float(f"{lr:.6g}")
        row["seconds"] = round(train_seconds + eval_seconds, 3)
        row["eval_seconds"] = round(eval_seconds, 3)
        row["images_per_s"] = round(images / train_seconds, 1) if train_seconds > 0 else None
        return row

    def end_epoch(self, eval_seconds: float) -> None:
        self.elapsed_s += self.sums.seconds + eval_seconds
        self.epoch += 1
        self.sums = EpochSums()

    # the checkpoint's share: plain containers only (torch.load(weights_only=True) refuses anything else)
    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "sums": asdict(self.sums),
                "pending": [list(r) for r in self.pending], "best_test_err": self.best_test_err,
                "elapsed_s": self.elapsed_s}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainState:
        return cls(step=int(d["step"]), epoch=int(d["epoch"]), sums=EpochSums(**d["sums"]),
                   pending=[StepRow(*r) for r in d["pending"]], best_test_err=d["best_test_err"],
                   elapsed_s=float(d["elapsed_s"]))


LR_JUMP = 0.2       # a change of the lr by more than this fraction from one iteration to the next ends a steps point


def lr_jumps(before: float, after: float) -> bool:
    """A step schedule's drop, a warm-up's end, a plateau's cut: not a cosine's or a warm-up's gentle slope."""
    return abs(after - before) > LR_JUMP * max(abs(before), abs(after))


def first_non_finite(rows: list[StepRow]) -> StepRow | None:
    return next((r for r in rows if not math.isfinite(r.loss)), None)
