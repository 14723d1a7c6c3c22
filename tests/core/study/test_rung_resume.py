"""A study's trial pauses at its rungs (core/train/trainer.py ``_held_at_rung``); stopped there and promoted later
(resumed), it ends bit for bit as the same settings trained without a pause (CPU, deterministic)."""
from __future__ import annotations

import time

import torch

from core.store.runs import RunStore
from core.train.checkpoint import load_checkpoint
from core.train.trainer import Trainer, train_run
from tests.conftest import tiny_config
from tests.core.train.test_trainer import metrics
from tests.stopping import training_thread


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


def test_a_trial_stopped_at_a_rung_and_promoted_equals_an_uninterrupted_run(tmp_path):
    cfg = tiny_config(epochs=4, deterministic=True, val_split=64, optimizer="adam", lr=2e-3, schedule="cosine",
                      weight_decay=1e-4)
    store = RunStore(tmp_path)
    ref, state = train_run(store, cfg.with_overrides(name="ref"))
    assert state == "finished"

    run = store.create(cfg.with_overrides(name="trial", study="s", trial=0, rungs=(1, 2)))
    with training_thread(lambda stop: Trainer(run, stop_event=stop).run()) as t:
        # rung 1: paused after epoch 1, waiting; the driver says continue (promoted at once)
        wait_for(lambda: run.read_status().get("state") == "paused" and run.read_status().get("rung_epoch") == 1,
                 "the pause at rung epoch 1")
        assert len(run.read_epochs()) == 1
        run.request("continue")
        # rung 2: the driver stops it (bottom of its rung); it keeps its checkpoint
        wait_for(lambda: run.read_status().get("rung_epoch") == 2 and run.read_status().get("state") == "paused",
                 "the pause at rung epoch 2")
        run.request("stop")
        assert t.result(60) == "stopped"
    assert run.read_status()["epoch"] == 2 and run.info().state == "stopped"
    # promoted later: resumed, it waits at its rung once more for the driver (which says continue: a trial killed at
    # a rung gets its decision when the scheduler resumes it), then trains on
    with training_thread(lambda stop: Trainer(run, stop_event=stop).run()) as t:
        wait_for(lambda: run.read_status().get("state") == "paused" and run.read_status().get("rung_epoch") == 2,
                 "the resumed trial waiting at its rung")
        assert len(run.read_epochs()) == 2
        run.request("continue")
        assert t.result(60) == "finished"
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(run.checkpoint_path)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert metrics(ref) == metrics(run) and all("val_err" in r for r in metrics(run))
    events = "\n".join(run.read_events())
    assert "resumed at epoch 3" in events and events.count("paused at") == 3
