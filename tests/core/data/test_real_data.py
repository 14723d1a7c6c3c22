"""Real CIFAR-10 images (a stratified subset written by ../shared/tools/cifar10_jpeg.py): ResNet-20 learns, and
bf16 autocast ends within noise of fp32 on the same run."""
from __future__ import annotations

import pytest

from core.spec.config import RunConfig
from core.store.runs import RunStore
from core.train.trainer import train_run


def real_config(data_dir, **kw):
    base = dict(depth=20, dataset="cifar10", data_dir=str(data_dir), download=False, batch_size=64, epochs=4,
                iterations=0, milestones=(), schedule="cosine", lr=0.05, weight_decay=5e-4, device="cpu",
                log_every=10, seed=1)
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture(scope="module")
def fp32_run(cifar_small, tmp_path_factory):
    run, state = train_run(RunStore(tmp_path_factory.mktemp("runs")), real_config(cifar_small, precision="fp32"))
    assert state == "finished", run.read_status().get("error")
    return run


def test_resnet20_beats_chance_on_held_out_real_images(fp32_run):
    """2,000 training images, 4 epochs: test error on 500 held-out real images far below chance (90%)."""
    epochs = fp32_run.read_epochs()
    assert len(epochs) == 4
    assert epochs[-1]["test_err"] < 75.0, epochs[-1]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]


@pytest.mark.timeout(600)   # ~30 s alone here; more beside other work
def test_bf16_autocast_matches_fp32_within_noise(cifar_small, tmp_path):
    """The same small run in fp32 and in bf16 autocast ends within noise. A ResNet-8 of width 8 for 2 epochs (31 s
    alone here; width 16 took ~100 s): bf16 convolutions run ~11x slower than fp32 on CPUs without native bf16 (this
    one: 41 s vs 3.7 s for two ResNet-20 steps at batch 128)."""
    small = dict(depth=8, width=8, epochs=2)
    fp32, state = train_run(RunStore(tmp_path / "fp32"), real_config(cifar_small, precision="fp32", **small))
    assert state == "finished", fp32.read_status().get("error")
    run, state = train_run(RunStore(tmp_path / "bf16"), real_config(cifar_small, precision="bf16", **small))
    assert state == "finished"
    assert run.read_status()["precision"] == "bf16"
    a, b = fp32.read_epochs()[-1], run.read_epochs()[-1]
    # 500 test images: one standard error of an error rate near 60% is ~2.2 points per run
    assert abs(a["test_err"] - b["test_err"]) < 8.0, (a, b)
    assert abs(a["train_loss"] - b["train_loss"]) < 0.15, (a, b)
