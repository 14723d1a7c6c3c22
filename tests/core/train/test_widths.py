"""Stage widths of their own (``widths``, ``stem_width``) and the initialisation as a setting (``init``), issue 28:
the lab report's ResNet-20 30/60/90 after the course code's 64-filter stem, and that code's own 64/128/256 net."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from torch import nn

from core.spec import limits
from core.spec.config import ConfigError, RunConfig
from core.spec.grid import expand, parse_sweep
from core.spec.presets import preset
from core.store.estimate import _cost
from core.store.runs import RunStore
from core.train.models import count_parameters, create_model, model_for


def hand_count(stem: int, widths: tuple[int, int, int], n: int = 3, classes: int = 10) -> int:
    """A basic-block CIFAR ResNet with B shortcuts counted layer by layer: the stem conv + BN; per block two 3x3
    convs + BN, and a 1x1 projection + BN where the channels or the size change; the classifier with its bias."""
    total = 3 * stem * 9 + 2 * stem
    c_in = stem
    for c in widths:
        for _ in range(n):
            total += 9 * c_in * c + 2 * c + 9 * c * c + 2 * c
            if c_in != c:
                total += c_in * c + 2 * c
            c_in = c
    return total + widths[2] * classes + classes


def test_the_lab_reports_net_and_the_course_codes_have_their_hand_counted_parameters():
    # by hand (issue 28): stem 1,728 + 128; stage 1 60,120 (its first block projects 64 -> 30); stage 2 180,840;
    # stage 3 419,760; classifier 910
    assert hand_count(64, (30, 60, 90)) == 1_728 + 128 + 60_120 + 180_840 + 419_760 + 910 == 663_486
    assert hand_count(64, (64, 128, 256)) == 4_327_754
    lab = preset("lab-report", depth=20)
    assert (lab.widths, lab.stem_width, lab.shortcut, lab.init, lab.normalize) == \
        ((30, 60, 90), 64, "B", "torch-default", "channel")
    assert count_parameters(model_for(lab)) == 663_486
    assert count_parameters(model_for(lab.with_overrides(widths="64,128,256"))) == 4_327_754
    assert count_parameters(create_model("resnet", 20, "B", 16)) == hand_count(16, (16, 32, 64)) == 272_474
    # the size bounds' estimate follows the widths (within 5%: it leaves BN and the projections out)
    for cfg in (lab, lab.with_overrides(widths="64,128,256"), lab.with_overrides(depth=56)):
        real = count_parameters(model_for(cfg))
        assert abs(limits.parameters(cfg.depth, cfg.width, 10, widths=cfg.widths, stem=cfg.stem) - real) < 0.05 * real


def test_preact_takes_widths_and_a_stem_and_wrn_keeps_its_k():
    net = create_model("preact", 8, "B", widths=(6, 10, 14), stem_width=12)
    assert net.conv1.out_channels == 12 and net.layer3[0].conv2.out_channels == 14 and net.fc.in_features == 14
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    errors = RunConfig(arch="wrn", depth=16, width=32, widths=(32, 64, 100)).validate()
    assert "keeps the doubling" in errors["widths"]
    assert "keeps its own stem" in RunConfig(arch="wrn", depth=16, width=32, stem_width=8).validate()["stem_width"]
    assert "keeps the doubling" in RunConfig(arch="preact-bottleneck", depth=11, width=4, widths=(4, 6, 8)).validate()[
        "widths"]


def test_width_and_widths_never_disagree():
    c = RunConfig(width=8)
    assert c.widths == (8, 16, 32)                                        # derived
    assert RunConfig.from_dict({"widths": "30,60,90"}).width == 30         # width is the first stage's
    assert c.with_overrides(width=32).widths == (32, 64, 128)             # width alone re-derives the stages
    lab = preset("lab-report")
    assert lab.with_overrides(widths=(64, 128, 256)).width == 64 and lab.with_overrides(width=16).stem_width == 64
    with pytest.raises(ConfigError, match="disagree"):
        c.with_overrides(width=32, widths="30,60,90")
    assert "disagree" in dataclasses.replace(lab, width=16).validate()["widths"]
    assert "three positive" in RunConfig(widths=(30, 60)).validate()["widths"]
    # an old config.json (no widths, no stem_width, no init) reads as before: the paper's net, the paper's init
    old = json.loads(RunConfig(width=32).to_json())
    for key in ("widths", "stem_width", "init", "plateau_patience", "plateau_threshold", "plateau_cooldown"):
        old.pop(key)
    back = RunConfig.from_json(json.dumps(old))
    assert (back.width, back.widths, back.stem, back.init) == (32, (32, 64, 128), 32, "he-fan-out")
    assert RunConfig.from_json(lab.to_json()) == lab


def test_labels_names_ids_and_sweeps_say_the_widths(tmp_path):
    lab = preset("lab-report", depth=20)
    assert lab.label() == "ResNet-20 B 30/60/90 stem 64 sgd" and lab.net_name() == "ResNet-20 30/60/90 stem 64"
    assert RunConfig().label() == "ResNet-20 A w16 sgd" and RunConfig().net_name() == "ResNet-20"
    assert RunStore(tmp_path).make_id(lab).startswith("r20-B-w30_60_90-sgd-")
    field, values = parse_sweep("widths=16,32,64|30,60,90|64,128,256")
    assert field == "widths" and values == [(16, 32, 64), (30, 60, 90), (64, 128, 256)]
    runs = expand(lab.with_overrides(depth=8, name="ws"), sweeps={field: values}, seeds=[1, 2])
    assert [(c.width, c.widths, c.stem_width) for c in runs[::2]] == \
        [(16, (16, 32, 64), 64), (30, (30, 60, 90), 64), (64, (64, 128, 256), 64)]
    assert [c.name for c in runs[:3]] == ["ws-w16_32_64-s1", "ws-w16_32_64-s2", "ws-w30_60_90-s1"]


def test_memory_and_time_estimates_follow_the_widths():
    """The report's dilemma: the example code's ResNet-110 64/128/256 ran out of memory at batch 128; batch 64
    halves its activations. The estimates of 30/60/90 lie between those of 16/32/64 and 64/128/256."""
    wide = preset("lab-report", depth=110, widths=(64, 128, 256), batch_size=128)
    at128, _ = limits.memory_estimate(wide)
    at64, _ = limits.memory_estimate(wide.with_overrides(batch_size=64))
    weights = limits.train_bytes(110, 64, widths=(64, 128, 256), stem=64)
    assert at128 - weights == pytest.approx(2 * (at64 - weights))
    assert at128 > 5 * 2 ** 30                                # ~6 GiB: more than a small GPU holds
    sizes = [limits.memory_estimate(preset("lab-report", depth=110, widths=w))[0]
             for w in ((16, 32, 64), (30, 60, 90), (64, 128, 256))]
    costs = [_cost(preset("lab-report", depth=110, widths=w)) for w in ((16, 32, 64), (30, 60, 90), (64, 128, 256))]
    assert sizes == sorted(sizes) and costs == sorted(costs) and costs[0] < costs[1] < costs[2]


def _stds(net: nn.Module) -> tuple[float, float]:
    return float(net.conv1.weight.detach().std()), float(net.layer2[0].conv1.weight.detach().std())


def test_init_chooses_fan_out_fan_in_or_torchs_own():
    """Stem 3 -> 16 (fan-in 27, fan-out 144): He normal gives std sqrt(2/fan); PyTorch's own kaiming_uniform(a=sqrt 5)
    gives std 1/sqrt(3 fan_in). The same seed draws the same net for the same init."""
    torch.manual_seed(0)
    out = _stds(create_model("resnet", 20, init="he-fan-out"))
    torch.manual_seed(0)
    inn = _stds(create_model("resnet", 20, init="he-fan-in"))
    torch.manual_seed(0)
    own = _stds(create_model("resnet", 20, init="torch-default"))
    assert out[0] == pytest.approx(math.sqrt(2 / 144), rel=0.1) and inn[0] == pytest.approx(math.sqrt(2 / 27), rel=0.1)
    assert own[0] == pytest.approx(1 / math.sqrt(3 * 27), rel=0.15)
    assert inn[1] == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.05) and out[1] == pytest.approx(math.sqrt(2 / 288),
                                                                                                   rel=0.05)
    torch.manual_seed(0)
    assert _stds(create_model("resnet", 20)) == out                     # the default: the paper's fan-out
    assert "unknown init" in RunConfig(init="xavier").validate()["init"]
