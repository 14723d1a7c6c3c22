"""A stop during a torch.compile warm-up (issue 34, item 5): a trainer that owns its process ends the run at once,
recorded stopped where it started (nothing trains before the compile ends), and ends the process; the compile is
abandoned with it. core/train/compile_watch.py."""
from __future__ import annotations

import json
import threading
import time
import types

import pytest

from core.store.runs import Run
from core.train import compile_watch
from core.train.requests import Requests
from core.train.state import TrainState
from tests.cli.test_cli import TINY, start, wait_for


class FakeTrainer:
    """What CompileWatch uses of a Trainer."""

    def __init__(self, exit_early=None):
        self.dist, self.exit_early = types.SimpleNamespace(many=False), exit_early
        self.requests = Requests(types.SimpleNamespace(read_request=lambda: None, clear_request=lambda: None))
        self.train_state, self.lock_held = TrainState(step=16, epoch=2), True
        self.setup = types.SimpleNamespace(iters_per_epoch=8)
        self.ended, self.message = [], ""

    def _end(self, state, message):
        self.ended.append(state)
        self.message = message

    def write_status(self, **fields):
        pass


def test_a_stop_during_the_compile_records_the_run_stopped_and_leaves(monkeypatch):
    exits = []
    monkeypatch.setattr(compile_watch.os, "_exit", exits.append)
    left = threading.Event()
    tr = FakeTrainer(exit_early=left.set)
    watch = compile_watch.CompileWatch(tr)
    watch.__enter__()
    tr.requests.stop_event.set()                       # the compile goes on in this thread; the stop comes meanwhile
    assert left.wait(10)
    assert tr.ended == ["stopped"] and "stopped during the compile at epoch 2, step 16" in tr.message
    assert not watch.gate.acquire(blocking=False)       # the compile's end would wait for the exit: nothing trains
    assert exits == [1]                                 # the guard after ``leave`` (the CLI's leave exits itself)
    watch.gate.release()
    watch.__exit__(None, None, None)


class Rounds(threading.Event):
    """The watch's ``done`` event, counting the rounds of its loop (one wait each)."""

    def __init__(self):
        super().__init__()
        self.rounds = 0

    def wait(self, timeout=None):
        self.rounds += 1
        return super().wait(timeout)


def test_without_leave_a_stop_waits_for_the_compile():
    tr = FakeTrainer()
    watch = compile_watch.CompileWatch(tr)
    watch.done = Rounds()
    with watch:
        tr.requests.stop_event.set()
        deadline = time.monotonic() + 30    # five rounds of the watch's loop go by with the stop set
        while watch.done.rounds < 6:
            assert time.monotonic() < deadline, "the watch's loop does not go round"
            time.sleep(0.01)
    assert tr.ended == []


def test_a_compile_that_ends_first_keeps_the_gate():
    tr = FakeTrainer(exit_early=lambda: pytest.fail("left after the compile ended"))
    with compile_watch.CompileWatch(tr) as watch:
        pass
    tr.requests.stop_event.set()
    watch._abandon()                                    # a stop seen just after the end: the loop obeys it
    assert tr.ended == []


@pytest.mark.slow
def test_stop_during_a_cli_compile_ends_the_process_before_the_compile_ends(tmp_path):
    """`stop RUN` during `train --compile`: the process exits with the stop's code (143) without waiting for the
    compile (events.log never says 'torch.compile took'), the run stopped at step 0 and resumable."""
    runs = tmp_path / "runs"
    proc = start("train", *TINY, "--epochs", "1", "--compile", "default", "--channels-last", "off", runs=runs)
    try:
        folder = wait_for(lambda: next(iter(runs.glob("r*/status.json")), None), "the run", 120, proc).parent
        wait_for(lambda: json.loads((folder / "status.json").read_text()).get("compiling"), "the compile", 120, proc)
        asked = time.monotonic()
        Run(folder).request("stop")                    # what `tui_app.py stop RUN` does first
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - asked
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, (out, err)
    status = json.loads((folder / "status.json").read_text())
    events = (folder / "events.log").read_text()
    assert status["state"] == "stopped" and status["step"] == 0, status
    assert "stopped during the compile at epoch 1, step 0" in events and "torch.compile took" not in events
    assert "stopped before its first step completed" in out and "continues it" in out and took < 10, (took, out)
    assert not (folder / "steps.jsonl").exists() or not (folder / "steps.jsonl").read_text().strip()
