"""A stop flag for tests that stop a run mid-way, and a trainer thread a failed test cannot leave running; no pytest
import (tests/gpu runs without pytest too)."""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class StopAfter:
    """A threading.Event-like stop flag that turns on after it has been asked ``n`` times (once per iteration)."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def is_set(self) -> bool:
        self.calls += 1
        return self.calls >= self.n

    def set(self) -> None:
        self.n = -1



class Training:
    """A trainer running in a thread of the test (``training_thread``)."""

    def __init__(self, train: Callable[[threading.Event], object]):
        self.stop, self.out = threading.Event(), []
        self.thread = threading.Thread(target=lambda: self.out.append(train(self.stop)), name="test-trainer",
                                       daemon=True)

    def result(self, timeout: float = 60.0) -> object:
        """The trainer's end state, waited for up to ``timeout`` seconds (a trainer still running fails the test)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"the trainer did not end within {timeout:g} s"
        return self.out[-1]


@contextlib.contextmanager
def training_thread(train: Callable[[threading.Event], object], timeout: float = 60.0) -> Iterator[Training]:
    """Run ``train(stop)`` (e.g. ``lambda stop: Trainer(run, stop_event=stop).run()``) in a daemon thread. Leaving the
    block, a failed assertion included, sets ``stop`` and joins the thread: a 200-epoch run the test failed to stop
    (or left paused) cannot keep the suite running, and a thread still alive ``timeout`` seconds after its stop
    fails the test."""
    training = Training(train)
    training.thread.start()
    try:
        yield training
    finally:
        training.stop.set()
        training.thread.join(timeout)
        if training.thread.is_alive():
            raise AssertionError(f"the trainer thread still runs {timeout:g} s after its stop was set")
