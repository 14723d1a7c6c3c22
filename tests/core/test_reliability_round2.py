"""Reliability, round 2 (issue 20): a deleted lock, the queue's own files, unbounded reads, odd inputs.

Each test here failed on the code before its fix.
"""
from __future__ import annotations

import json
from pathlib import Path

import core.train.trainer as trainer_module
from core.store.lock import FileLock
from core.store.runs import RunStore
from core.train.trainer import Trainer
from core.util.files import atomic_write_json
from tests.conftest import tiny_config


def snapshot(folder: Path, skip: tuple[str, ...] = ("events.log",)) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in skip}


# -- 1: a deleted lock file --------------------------------------------------------------------------------------------
class TakeOverAt:
    """A stop flag asked once per iteration: at iteration ``at`` another "process" deletes the run's lock file, locks
    a new one and writes the run's status (as `rm runs/X/lock; resume X` does); at ``stop`` it asks for a stop (a
    SIGTERM), whose checkpoint would overwrite the other process's."""

    def __init__(self, run, at: int, stop: int):
        self.run, self.at, self.stop, self.calls = run, at, stop, 0
        self.other = FileLock(run.lock_path)
        self.taken: dict[str, bytes] = {}

    def is_set(self) -> bool:
        self.calls += 1
        if self.calls == self.at:
            self.run.lock_path.unlink()
            self.other.acquire()
            atomic_write_json(self.run.status_path, {"state": "running", "pid": 1, "note": "the other process"})
            self.taken = snapshot(self.run.path)
        return self.calls >= self.stop

    def set(self) -> None:
        self.stop = 0


def test_a_trainer_whose_lock_file_was_deleted_stops_writing_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "HEARTBEAT_S", 0.0)     # a heartbeat every iteration
    run = RunStore(tmp_path).create(tiny_config(epochs=3))
    flag = TakeOverAt(run, at=3, stop=12)                       # taken in epoch 1 (8 iterations), stop in epoch 2
    trainer = Trainer(run, stop_event=flag)
    state = trainer.run()
    assert flag.taken, "the take-over happened"
    assert state == "crashed" and "lock file" in trainer.message and "another process" in trainer.message
    assert flag.calls < 6, "it noticed at its next heartbeat"
    assert snapshot(run.path) == flag.taken           # no status, steps, epoch or checkpoint written after it
    assert not run.checkpoint_path.exists()
    assert json.loads(run.status_path.read_text())["note"] == "the other process"
    assert "lock file" in run.read_events()[-1]      # events.log (append-only) says why this process left
    flag.other.release()

