"""The plateau schedule (issue 28): divide the rate by 1/lr_factor once the validation error has gone
plateau_patience epochs without coming plateau_threshold points below its best; cooldown and min_lr; checkpointed so a
stopped and resumed run decays where the uninterrupted one does, bit for bit."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from core.spec.config import RunConfig
from core.spec.grid import expand, parse_sweep
from core.store.runs import RunStore
from core.train.checkpoint import load_checkpoint
from core.train.optim import LRSchedule
from core.train.trainer import Trainer, train_run
from tests.conftest import ROOT, tiny_config
from tests.stopping import StopAfter

IPE = 10     # iterations per epoch of the crafted runs


def decays(curve, **kw) -> list[tuple[int, float]]:
    """(epoch, lr from then on) of each decay on a crafted validation curve (one error % per epoch)."""
    cfg = RunConfig(schedule="plateau", val_split=5000, epochs=len(curve), iterations=0, lr=0.1, **kw)
    sched = LRSchedule(cfg, IPE, IPE * len(curve))
    out = []
    for epoch, err in enumerate(curve, 1):
        during = sched.lr(epoch * IPE - 1)
        if sched.observe_val_error(epoch, epoch * IPE, err):
            out.append((epoch, round(sched.lr(epoch * IPE), 10)))
        assert sched.lr(epoch * IPE - 1) == during          # a decay applies from the next epoch on, never back
    return out


@pytest.mark.parametrize("curve,kw,expected", [
    # improving every epoch: never
    ([50, 40, 30, 20, 10], dict(plateau_patience=2), []),
    # 30 at epoch 3, then two epochs without improvement: decay after epoch 5
    ([50, 40, 30, 31, 30, 29, 28], dict(plateau_patience=2, plateau_threshold=0.0), [(5, 0.01)]),
    # improvements smaller than the threshold do not count: 29.5 is not 1 point below 30
    ([50, 40, 30, 29.5, 29.2, 20], dict(plateau_patience=2, plateau_threshold=1.0), [(5, 0.01)]),
    # patience 1: every epoch without improvement decays (epochs 3 and 4), the new best at 5 resets the count
    ([40, 30, 31, 32, 20, 21], dict(plateau_patience=1, plateau_threshold=0.0), [(3, 0.01), (4, 0.001), (6, 1e-4)]),
    # cooldown 2: the two epochs after a decay do not count
    ([40, 30, 31, 32, 33, 34, 35], dict(plateau_patience=1, plateau_threshold=0.0, plateau_cooldown=2),
     [(3, 0.01), (6, 0.001)]),
    # the floor: min_lr 0.005 stops the second decay at 0.005 and the third does not happen
    ([40, 30, 31, 32, 33], dict(plateau_patience=1, plateau_threshold=0.0, min_lr=0.005), [(3, 0.01), (4, 0.005)]),
    # lr_factor 0.5 halves
    ([40, 30, 31, 32], dict(plateau_patience=2, plateau_threshold=0.0, lr_factor=0.5), [(4, 0.05)]),
])
def test_plateau_decays_where_the_rule_says(curve, kw, expected):
    assert decays(curve, **kw) == expected


def test_plateau_needs_a_validation_split_and_sweeps_choose_it():
    errors = RunConfig(schedule="plateau").validate()
    assert "needs held-out images: set val_split" in errors["schedule"]
    assert not RunConfig(schedule="plateau", val_split=5000).validate()
    for field, bad in (("plateau_patience", 0), ("plateau_cooldown", -1), ("plateau_threshold", -0.5)):
        assert field in RunConfig(schedule="plateau", val_split=5000, **{field: bad}).validate()
    field, values = parse_sweep("schedule=multistep,plateau")
    runs = expand(RunConfig(val_split=5000), sweeps={field: values})
    assert [c.schedule for c in runs] == ["multistep", "plateau"]


def test_cli_refuses_plateau_without_a_validation_split(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tui_app.py"), "train", "--schedule", "plateau", "--dataset",
                          "synthetic", "--device", "cpu", "--runs-dir", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "needs held-out images: set val_split" in out.stderr + out.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def plateau_config(**kw):
    # a threshold no error can beat: every epoch after the first counts as no improvement; patience 1 decays at the
    # end of epochs 2 and 3 (8 iterations an epoch: 192 training images after 64 held out, batch 24)
    return tiny_config(epochs=4, deterministic=True, log_every=3, batch_size=24, val_split=64, schedule="plateau",
                       plateau_patience=1, plateau_threshold=100.0, lr=0.05, **kw)


@pytest.mark.parametrize("stop_at", [13, 16])
def test_a_stopped_plateau_run_resumes_exactly(tmp_path, stop_at):
    store = RunStore(tmp_path)
    ref, state = train_run(store, plateau_config(name="ref"))
    assert state == "finished"
    assert [r["lr"] for r in ref.read_epochs()] == [0.05, 0.05, 0.005, 0.0005]
    events = "\n".join(ref.read_events())
    assert "lr divided by 10 to 0.005 after epoch 2 (step 16)" in events
    assert "lr divided by 10 to 0.0005 after epoch 3 (step 24)" in events
    steps = {s["step"]: s["lr"] for s in ref.read_steps()}
    assert steps[15] == 0.05 and steps[18] == 0.005 and steps[27] == 0.0005   # the lr panel's curve shows each decay

    run = store.create(plateau_config(name="cut"))
    assert Trainer(run, stop_event=StopAfter(stop_at)).run() == "stopped"
    assert Trainer(run).run() == "finished"
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(run.checkpoint_path)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["schedule"] == b["schedule"] and a["schedule"]["plateau"]["decay_steps"] == [16, 24, 32]
    timing = {"seconds", "eval_seconds", "images_per_s", "peak_mem_bytes", "reserved_mem_bytes"}
    assert [{k: v for k, v in r.items() if k not in timing} for r in ref.read_epochs()] == \
        [{k: v for k, v in r.items() if k not in timing} for r in run.read_epochs()]
    assert ref.read_steps() == run.read_steps()
