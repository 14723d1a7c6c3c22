"""The form's time estimate: past runs' measured pace, scaled to a new run's net and length (hand-computed)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.spec.archs import conv_cost
from core.spec.config import RunConfig
from core.store.estimate import estimate


def past(depth: int, width: int, device: str, step: int, elapsed: float, batch: int = 128, arch: str = "resnet"):
    cfg = RunConfig(depth=depth, width=width, batch_size=batch, arch=arch, dataset="synthetic")
    return SimpleNamespace(config=cfg, status={"device": device, "elapsed_s": elapsed}, step=step)


def test_conv_cost_counts_blocks_and_width():
    # ResNet-20: 3 blocks per stage, 3 stages, 2 convs of 9 w^2 per pixel of 32x32 -> 3*3*18*16^2*1024
    assert conv_cost("resnet", 20, 16) == 3 * 3 * 18 * 256 * 1024
    assert conv_cost("resnet", 56, 16) == pytest.approx(3 * conv_cost("resnet", 20, 16))
    assert conv_cost("resnet", 20, 32) == 4 * conv_cost("resnet", 20, 16)
    assert conv_cost("preact-bottleneck", 164, 16) == 3 * 18 * 17 * 256 * 1024
    assert conv_cost("resnet", 21, 16) == 0.0                 # not a depth of this arch: no cost, no estimate


def test_the_same_net_uses_its_own_pace():
    # 100 s for 1,000 iterations of 128 images: 100 / 128,000 s per image; a new run of 500 iterations at batch 64
    infos = [past(20, 16, "cpu", 1000, 100.0)]
    cfg = RunConfig(depth=20, width=16, batch_size=64, iterations=500, device="cpu", dataset="synthetic")
    eta = estimate([cfg], infos)
    assert eta.seconds == pytest.approx(500 * 64 * 100.0 / 128000)
    assert eta.basis == "pace of 1 past cpu run"


def test_another_net_is_scaled_by_its_convolution_cost():
    infos = [past(20, 16, "cpu", 1000, 100.0)]
    cfg = RunConfig(depth=56, width=16, batch_size=128, iterations=1000, device="cpu", dataset="synthetic")
    assert estimate([cfg], infos).seconds == pytest.approx(300.0)         # 3x the blocks, 3x the time
    grid = [cfg, cfg.with_overrides(depth=20)]
    assert estimate(grid, infos).seconds == pytest.approx(400.0)          # one after another: the sum


def test_only_the_same_kind_of_device_and_runs_long_enough_count():
    cfg = RunConfig(depth=20, iterations=100, device="auto", dataset="synthetic")
    gpu = [past(20, 16, "cuda:0", 1000, 10.0)]
    assert estimate([cfg], gpu, auto_kind="cpu") is None                  # no cpu run has set a pace
    assert estimate([cfg], gpu, auto_kind="cuda").seconds == pytest.approx(1.0)
    short = [past(20, 16, "cpu", 5, 100.0), past(20, 16, "cpu", 1000, 1.0)]
    assert estimate([cfg], short) is None        # 5 iterations (start-up) or 1 s do not measure a pace
    assert estimate([cfg], [SimpleNamespace(config=None, status={}, step=0)]) is None   # a damaged run
