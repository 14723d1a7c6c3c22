"""What the scheduler decides for a run whose trainer process ended (``next_action``): pure functions with
table-driven tests (tests/core/serve/test_decisions.py), kept apart from the serving loop in scheduler.py."""
from __future__ import annotations

from dataclasses import dataclass

from core.store.rules import ACTIVE

RETRYABLE = ("crashed", "queued", "damaged")   # a trainer process that ended leaving one of these died early
FINAL = ("finished", "failed", "diverged", "out-of-memory", "stopped")


@dataclass(frozen=True)
class Action:
    """What the scheduler does with a run whose trainer process ended (``next_action``)."""

    kind: str                 # release: another process trains it; retry: resume it (crash); oom: retry it with
    #                           micro_batches slices; give-up: retries used up; settle: leave it as it is
    micro_batches: int = 0


def next_action(state: str, retries_used: int, retries: int, micro_batches: int = 1, batch_size: int = 0,
                gone: bool = False) -> Action:
    """The decision for a run that left its slot in ``state``, after ``retries_used`` of ``retries`` crash retries;
    ``micro_batches`` is what it trained with, of a batch of ``batch_size`` images. ``gone``: what trained it is
    known to be gone (a Slurm job that ended, killed at its time limit with a fresh heartbeat): a run that still
    says running then crashed."""
    if state in ACTIVE and gone:
        state = "crashed"
    if state in ACTIVE:
        return Action("release")
    if state in RETRYABLE:
        return Action("retry") if retries_used < retries else Action("give-up")
    if state == "out-of-memory" and 2 * micro_batches <= batch_size:
        return Action("oom", 2 * micro_batches)
    return Action("settle")
