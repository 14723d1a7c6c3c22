"""A stop flag for tests that stop a run mid-way, with no pytest import (tests/gpu runs without pytest too)."""
from __future__ import annotations


class StopAfter:
    """A threading.Event-like stop flag that turns on after it has been asked ``n`` times (once per iteration)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls >= self.n

    def set(self) -> None:
        self.n = -1
