"""Learning-rate schedules evaluated per iteration, and the optimizers they drive."""
from __future__ import annotations

import math

import pytest
import torch

from core.spec.config import RunConfig
from core.spec.presets import preset
from core.train.models import cifar_resnet
from core.train.optim import LRSchedule, build_optimizer


def test_paper_multistep_in_iterations():
    s = LRSchedule(preset("he2016"), iters_per_epoch=391, total_steps=64000)
    assert s.lr(0) == 0.1 and s.lr(31999) == 0.1
    assert s.lr(32000) == pytest.approx(0.01) and s.lr(47999) == pytest.approx(0.01)
    assert s.lr(48000) == pytest.approx(0.001) and s.lr(63999) == pytest.approx(0.001)


def test_multistep_in_epochs():
    s = LRSchedule(preset("lab-report"), iters_per_epoch=782, total_steps=164 * 782)
    assert s.lr(51 * 782 - 1) == 0.1 and s.lr(51 * 782) == pytest.approx(0.01)
    assert s.lr(75 * 782 - 1) == pytest.approx(0.01) and s.lr(75 * 782) == pytest.approx(0.001)


def test_cosine_with_floor_and_linear_warmup():
    cfg = RunConfig(schedule="cosine", lr=0.1, min_lr=0.001, warmup_iters=10, milestones=(), epochs=10, iterations=0)
    s = LRSchedule(cfg, iters_per_epoch=11, total_steps=110)
    assert s.lr(0) == pytest.approx(0.1 / 10) and s.lr(9) == pytest.approx(0.1)
    assert s.lr(10) == pytest.approx(0.1)
    assert s.lr(60) == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr(110) == pytest.approx(0.001)
    assert all(s.lr(i) >= s.lr(i + 1) for i in range(10, 110))


def test_constant():
    s = LRSchedule(RunConfig(schedule="constant", lr=0.02, milestones=()), 10, 100)
    assert {s.lr(i) for i in range(100)} == {0.02}


def test_error_warmup_switch_and_state():
    s = LRSchedule(preset("he2016", depth=110), iters_per_epoch=391, total_steps=64000)
    assert s.lr(0) == pytest.approx(0.01) and s.watching_error
    assert not s.observe_train_error(100, 85.0) and s.lr(101) == pytest.approx(0.01)
    assert s.observe_train_error(400, 79.9) and s.lr(401) == pytest.approx(0.1) and not s.watching_error
    s2 = LRSchedule(preset("he2016", depth=110), 391, 64000)
    s2.load_state_dict(s.state_dict())
    assert s2.lr(401) == pytest.approx(0.1) and s2.warm_done_at == 400
    assert not LRSchedule(preset("he2016", depth=56), 391, 64000).watching_error


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("nesterov", torch.optim.SGD),
                                      ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_optimizers(name, cls):
    cfg = RunConfig(optimizer=name, lr=0.01, weight_decay=1e-4, momentum=0.9, beta1=0.8, beta2=0.99)
    opt = build_optimizer(cifar_resnet(8, width=4), cfg, torch.device("cpu"))
    assert isinstance(opt, cls)
    g = opt.param_groups[0]
    assert g["lr"] == 0.01 and g["weight_decay"] == 1e-4
    if cls is torch.optim.SGD:
        assert g["momentum"] == 0.9 and g["nesterov"] == (name == "nesterov")
    else:
        assert g["betas"] == (0.8, 0.99)


def test_warmup_takes_at_most_a_tenth_of_a_short_run():
    """The quick preset's 200 warm-up iterations on 2,000 images (240 iterations): once the rate reached only
    0.016; now the warm-up is 24 iterations and the full rate comes at the 24th (issue 12, point 9)."""
    from core.data.plan import planned_steps, warmup_steps

    cfg = preset("quick", dataset="synthetic")
    assert cfg.warmup_iters == 200
    ipe, total = planned_steps(cfg)
    assert (ipe, total) == (16, 240)
    s = LRSchedule(cfg, ipe, total)
    assert s.warmup == warmup_steps(200, total) == 24
    assert s.lr(23) == pytest.approx(0.1) and max(s.lr(i) for i in range(total)) == pytest.approx(0.1)
    full = LRSchedule(preset("quick"), 391, 15 * 391)          # a full CIFAR-10 run keeps its 200
    assert full.warmup == 200 and s.lr(0) == pytest.approx(0.1 / 24)
