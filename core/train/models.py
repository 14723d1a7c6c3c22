"""CIFAR ResNets of He et al. 2016 ("Deep Residual Learning for Image Recognition"), section 4.2.

A 3x3 conv stem with ``width`` filters, three stages of n basic blocks with ``width``, ``2*width`` and
``4*width`` filters (stride 2 at the first block of stages 2 and 3), global average pooling and one linear
layer: depth = 6n + 2 weighted layers. Shortcut kinds:

* ``"A"`` (the paper's CIFAR choice, the default): identity; where the shape changes, subsample by 2 and
  append zero channels. Parameter free.
* ``"B"``: a 1x1 stride-2 projection + batch norm where the shape changes, identity elsewhere.
* ``"none"``: the plain net of the paper's Fig. 6 (left): the same layers without shortcuts.

Parameter counts (width 16, 10 classes), measured with ``count_parameters`` against the paper's Table 6:

=====  ======  ===========  ==========  ===========
depth  n       shortcut A   paper       shortcut B
=====  ======  ===========  ==========  ===========
20     3       269,722      0.27M       272,474
32     5       464,154      0.46M       466,906
44     7       658,586      0.66M       661,338
56     9       853,018      0.85M       855,770
110    18      1,727,962    1.7M        1,730,714
1202   200     19,421,274   19.4M       19,424,026
=====  ======  ===========  ==========  ===========

The forward pass has no Python-side data-dependent control flow and no host syncs, so it compiles with
``torch.compile`` and runs in ``channels_last`` memory format.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHORTCUT_KINDS = ("A", "B", "none")


def blocks_per_stage(depth: int) -> int:
    """n for depth = 6n + 2; raises ValueError for any other depth."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"ResNet depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...), got {depth!r}"
        )
    return (depth - 2) // 6


class PadShortcut(nn.Module):
    """Option A: subsample by ``stride`` and append zero channels up to ``out_channels`` (no parameters)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra}"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers; the shortcut is added before the final ReLU (paper Fig. 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.has_shortcut = shortcut != "none"
        reshapes = stride != 1 or in_channels != out_channels
        self.shortcut: nn.Module | None
        if shortcut == "none":
            self.shortcut = None
        elif not reshapes:
            self.shortcut = nn.Identity()
        elif shortcut == "A":
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        else:  # "B"
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    """The paper's 6n+2-layer CIFAR network; maps normalised Nx3x32x32 floats to logits."""

    def __init__(self, depth: int, shortcut: str = "A", width: int = 16, num_classes: int = 10):
        super().__init__()
        n = blocks_per_stage(depth)
        if shortcut not in SHORTCUT_KINDS:
            raise ValueError(f"shortcut must be one of {', '.join(SHORTCUT_KINDS)}, got {shortcut!r}")
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.depth, self.shortcut, self.width, self.num_classes = depth, shortcut, width, num_classes
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages = []
        in_ch = width
        for i, out_ch in enumerate((width, 2 * width, 4 * width)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_ch, out_ch, stride, shortcut))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(4 * width, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # He et al. 2015 ("Delving deep into rectifiers") init, as the paper states; BN starts as identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        # global average pooling as a mean: the same function, but its backward is deterministic on CUDA
        # (adaptive_avg_pool2d's backward is not, which deterministic=True would only warn about)
        x = x.mean((2, 3))
        return self.fc(x)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, shortcut={self.shortcut!r}, width={self.width}"


def cifar_resnet(depth: int, shortcut: str = "A", width: int = 16, num_classes: int = 10) -> CifarResNet:
    """The one place that builds a model. Raises ValueError for a depth that is not 6n+2 or bad options."""
    return CifarResNet(depth, shortcut=shortcut, width=width, num_classes=num_classes)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all of them, as the paper counts; buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
