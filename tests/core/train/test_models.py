"""CIFAR ResNet structure: parameter counts against the paper, option A's zero padding, shapes, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from core.train.models import BasicBlock, PadShortcut, cifar_resnet, count_parameters

# He et al. 2016, Table 6 (option A), at the paper's precision.
PAPER_PARAMS = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M", 1202: "19.4M"}


def _paper_rounding(n: int, paper: str) -> str:
    decimals = len(paper.rstrip("M").split(".")[1])
    return f"{n / 1e6:.{decimals}f}M"


@pytest.mark.parametrize("depth", sorted(PAPER_PARAMS))
def test_parameter_counts_match_paper(depth):
    model = cifar_resnet(depth)
    assert _paper_rounding(count_parameters(model), PAPER_PARAMS[depth]) == PAPER_PARAMS[depth]


def test_exact_parameter_counts():
    # Exact values (also in core/train/models.py's docstring), so a silent structural change is caught.
    assert count_parameters(cifar_resnet(20)) == 269_722
    assert count_parameters(cifar_resnet(56)) == 853_018
    assert count_parameters(cifar_resnet(20, "B")) == 272_474
    assert count_parameters(cifar_resnet(20, "none")) == 269_722


def test_option_a_zero_pads_new_channels():
    sc = PadShortcut(16, 32, stride=2)
    x = torch.randn(2, 16, 8, 8)
    out = sc(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0
    # Same in channels_last memory format.
    out_cl = sc(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(out_cl, out)


def test_option_a_model_has_no_shortcut_parameters():
    model = cifar_resnet(20, "A")
    pads = [m for m in model.modules() if isinstance(m, PadShortcut)]
    assert len(pads) == 2  # first block of stages 2 and 3
    assert all(sum(p.numel() for p in m.parameters()) == 0 for m in pads)


def test_option_a_block_adds_padded_input():
    # With conv2/bn2 zeroed the residual branch is 0, so the block output is relu(shortcut(x)).
    block = BasicBlock(16, 32, stride=2, shortcut="A").eval()
    nn.init.zeros_(block.bn2.weight)
    x = torch.randn(3, 16, 8, 8)
    expected = torch.cat([x[:, :, ::2, ::2], torch.zeros(3, 16, 4, 4)], dim=1).relu()
    assert torch.equal(block(x), expected)


@pytest.mark.parametrize("shortcut", ["A", "B", "none"])
@pytest.mark.parametrize("depth,width", [(8, 4), (14, 8), (20, 16)])
def test_output_shapes(depth, width, shortcut):
    model = cifar_resnet(depth, shortcut=shortcut, width=width)
    assert (model.depth, model.shortcut, model.width) == (depth, shortcut, width)
    x = torch.randn(3, 3, 32, 32)
    assert model(x).shape == (3, 10)
    model100 = cifar_resnet(depth, shortcut=shortcut, width=width, num_classes=100)
    assert model100(x).shape == (3, 100)
    # channels_last gives the same logits (up to float rounding).
    model.eval()
    cl = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(cl, model(x), atol=1e-4)


def test_weighted_layer_count_is_depth():
    for depth in (8, 20, 56):
        model = cifar_resnet(depth, "A")
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        assert len(convs) + len(linears) == depth


def test_stage_widths_and_strides():
    model = cifar_resnet(14, width=8)
    x = torch.randn(1, 3, 32, 32)
    shapes = []
    h = model.bn1(model.conv1(x)).relu()
    for stage in (model.layer1, model.layer2, model.layer3):
        h = stage(h)
        shapes.append(tuple(h.shape[1:]))
    assert shapes == [(8, 32, 32), (16, 16, 16), (32, 8, 8)]


@pytest.mark.parametrize("depth", [0, 7, 9, 19, 21, -4, 2, "20", 20.0, True])
def test_bad_depth_raises(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        cifar_resnet(depth)


def test_bad_shortcut_raises():
    with pytest.raises(ValueError, match="shortcut"):
        cifar_resnet(20, shortcut="C")


def test_option_b_has_more_parameters_than_a():
    for depth in (8, 20, 32):
        a, b = cifar_resnet(depth, "A"), cifar_resnet(depth, "B")
        assert count_parameters(b) > count_parameters(a)
        projections = [m for m in b.modules() if isinstance(m, BasicBlock) and isinstance(m.shortcut, nn.Sequential)]
        assert len(projections) == 2


def test_plain_net_has_no_shortcuts():
    model = cifar_resnet(20, "none")
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 9
    assert all(b.shortcut is None for b in blocks)
    assert not any(isinstance(m, (PadShortcut, nn.Identity)) for m in model.modules())
    # Same layers as the residual net.
    assert count_parameters(model) == count_parameters(cifar_resnet(20, "A"))


def test_init():
    model = cifar_resnet(8, "B")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    # Kaiming normal, fan_out: std = sqrt(2 / (out_channels * k * k)).
    conv = model.layer3[0].conv2
    fan_out = conv.out_channels * 9
    assert abs(conv.weight.std().item() - (2 / fan_out) ** 0.5) < 0.1 * (2 / fan_out) ** 0.5


def test_backward_and_state_dict_round_trip():
    model = cifar_resnet(8, width=4)
    loss = model(torch.randn(4, 3, 32, 32)).logsumexp(1).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    other = cifar_resnet(8, width=4)
    other.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(other.eval()(x), model.eval()(x))
