"""Issue 23: the engine's training math is the usual PyTorch loop's. Given the same initial weights and the same
batches (its own loader, built again), ``loss.backward(); SGD.step(); MultiStepLR.step()`` ends on the engine's
weights bit for bit, through a learning-rate drop; what is left between the engine and a torchvision script is
then the documented choices (normalisation, init; bench/fidelity.py measures them) and the random draws."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.data.cifar import load_data
from core.store.runs import RunStore
from core.train.checkpoint import load_checkpoint
from core.train.device import seed_everything
from core.train.setup import build
from core.train.trainer import train_run
from tests.conftest import tiny_config


@pytest.mark.parametrize("normalize", ["pixel", "channel"])
def test_the_engine_trains_what_a_plain_pytorch_loop_trains_on_the_same_batches(tmp_path, normalize):
    cfg = tiny_config(epochs=2, schedule="multistep", milestones=(12,), milestone_unit="iter", lr=0.1, momentum=0.9,
                      weight_decay=5e-4, optimizer="sgd", deterministic=True, channels_last="off",
                      normalize=normalize, seed=3)
    run, state = train_run(RunStore(tmp_path), cfg)
    assert state == "finished"
    engine = load_checkpoint(run.checkpoint_path)["model"]

    seed_everything(cfg.seed)                       # what the trainer does before it loads the data and builds
    setup = build(cfg, torch.device("cpu"), load_data(cfg), channels_last=False)
    model = setup.model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[12], gamma=0.1)
    steps = 0
    model.train()
    for _ in range(cfg.epochs):
        for x, y in setup.train_loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            steps += 1
    assert steps == 16                              # 256 images / 32, two epochs: the drop at 12 is inside
    for name, value in model.state_dict().items():
        assert torch.equal(value, engine[name]), name


def test_the_fidelity_bench_compares_two_inits_paired_by_seed(tmp_path, capsys):
    """bench/fidelity.py --init A B trains the engine under each init (the run setting, issue 28), seed by seed, and
    prints their paired difference: what a GPU session runs on the full set (README)."""
    import importlib.util
    import json

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("fidelity", ROOT / "bench" / "fidelity.py")
    fidelity = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fidelity)
    out = tmp_path / "fid.json"
    assert fidelity.main(["--train-per-class", "3", "--test-per-class", "2", "--depth", "8", "--epochs", "1",
                          "--milestones", "--seeds", "1", "2", "--init", "he-fan-out", "he-fan-in", "--skip-loop",
                          "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "init=he-fan-out and he-fan-in" in text and "he-fan-out - he-fan-in per epoch (mean ± sd over seeds)" in text
    rows = json.loads(out.read_text())["rows"]
    assert [r["seed"] for r in rows] == [1, 2]
    assert all(set(r["engines"]) == {"he-fan-out", "he-fan-in"} and len(r["engines"]["he-fan-in"]) == 1 for r in rows)
    assert all(r["engine"] == r["engines"]["he-fan-out"] for r in rows)      # the first init's, as before
