"""Asynchronous successive halving with promotion (Li et al. 2020, "A System for Massively Parallel Hyperparameter
Tuning", MLSys; Algorithm 2), on runs that pause instead of dying.

Rung k is epoch ``min_epochs * eta**k`` (below the full budget). A trial reaching a rung continues when it is in the
top ``floor(n / eta)`` of the ``n`` trials that have reached that rung so far; otherwise it stops with its checkpoint.
Whenever a rung gains members, a trial stopped there that is now in its top is promoted: resumed, it continues
exactly where it stopped (its schedule was planned for the full budget from the start). Pure functions: the driver
(core/study/driver.py) feeds them the validation errors the runs wrote.
"""
from __future__ import annotations

from dataclasses import dataclass


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> tuple[int, ...]:
    """Epochs at which a trial of ``epochs`` meets a rung: min_epochs x eta^k below the full length."""
    out, r = [], max(1, min_epochs)
    while r < epochs:
        out.append(r)
        r *= max(2, eta)
    return tuple(out)


@dataclass(frozen=True)
class Standing:
    """Where one trial stands at a rung: its rank (1 = best) among ``members`` and whether it is in the top."""

    rank: int
    members: int
    top: int
    value: float

    @property
    def promoted(self) -> bool:
        return self.rank <= self.top

    def text(self, rung: int, epoch: int) -> str:
        """'rung 2 (epoch 6): 11th of 14 at this rung, val err 41.2%'"""
        return f"rung {rung} (epoch {epoch}): {ordinal(self.rank)} of {self.members} at this rung, " \
               f"val err {self.value:.1f}%"


def standing(values: dict[int, float], trial: int, eta: int) -> Standing:
    """``values``: trial number -> its validation error at this rung (this trial's included). Ties go to the
    earlier trial, so every process that decides sees the same order."""
    order = sorted(values, key=lambda t: (values[t], t))
    return Standing(order.index(trial) + 1, len(order), len(order) // max(2, eta), values[trial])


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
