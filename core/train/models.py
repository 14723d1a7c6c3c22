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

The follow-ups (``arch``, rules in core/spec/archs.py), built by ``PreActResNet``; the papers use projection
shortcuts (``"B"``, a 1x1 convolution without BN on the pre-activated input, as in the authors' code):

==================  ======  ===========  ===========  =======================
net                 width   shortcut A   shortcut B   paper
==================  ======  ===========  ===========  =======================
PreAct-110          16      1,727,962    1,730,522    1.7M
PreAct-164 (bn.)    16      1,661,274    1,703,258    1.7M
PreAct-1001 (bn.)   16      10,285,722   10,327,706   10.2M (see tests)
WRN-28-10           160     36,220,634   36,479,194   36.5M
WRN-40-4            64      8,907,226    8,949,210    8.9M
WRN-16-8            128     10,795,482   10,961,370   11.0M
==================  ======  ===========  ===========  =======================

Stage widths of their own (``widths``, with a stem of ``stem_width`` filters; resnet and preact), the lab report's
net and the course code's it started from (shortcut B, 10 classes; counted by hand, layer by layer, and tested):

==============================  ===========  =============
net                             parameters   paper
==============================  ===========  =============
ResNet-20 30/60/90 stem 64      663,486      (0.27M at 16)
ResNet-20 64/128/256            4,327,754
==============================  ===========  =============

``init`` chooses the initialisation: ``he-fan-out`` (He et al. 2015 normal init of every convolution in fan-out
mode, the papers'), ``he-fan-in`` (the same in fan-in mode, as the usual CIFAR loop), ``torch-default`` (no init
function: PyTorch's own, what the course code got). BN starts as identity and the classifier He-normal with a zero
bias under both He inits.

``create_model(arch, depth, ...)`` (the registry ``MODELS``) is the one place that builds any of them.

The forward pass has no Python-side data-dependent control flow and no host syncs, so it compiles with
``torch.compile`` and runs in ``channels_last`` memory format.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from core.spec.archs import WRN_BASE, blocks_per_stage
from core.spec.config import SHORTCUTS

INIT_MODES = {"he-fan-out": "fan_out", "he-fan-in": "fan_in", "torch-default": None}


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

    def __init__(self, depth: int, shortcut: str = "A", width: int = 16, num_classes: int = 10,
                 widths: tuple[int, ...] = (), stem_width: int = 0, init: str = "he-fan-out"):
        super().__init__()
        n = blocks_per_stage("resnet", depth)
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {', '.join(SHORTCUTS)}, got {shortcut!r}")
        widths = _stage_widths(width, widths)
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.depth, self.shortcut, self.width, self.num_classes = depth, shortcut, widths[0], num_classes
        self.widths, self.init = widths, init
        stem = stem_width or widths[0]
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        stages = []
        in_ch = stem
        for i, out_ch in enumerate(widths):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_ch, out_ch, stride, shortcut))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(widths[2], num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        init_weights(self, self.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        # global average pooling as a mean: the same function, but its backward is deterministic on CUDA
        # (adaptive_avg_pool2d's backward is not, which deterministic=True would only warn about)
        x = x.mean((2, 3))
        return self.fc(x)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, shortcut={self.shortcut!r}, widths={self.widths}"


def _stage_widths(width: int, widths: tuple[int, ...]) -> tuple[int, int, int]:
    """The three stages' filters: ``widths`` when given, else (width, 2 width, 4 width); ValueError otherwise."""
    widths = tuple(widths) or (width, 2 * width, 4 * width) if isinstance(width, int) else tuple(widths)
    if len(widths) != 3 or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"width must be a positive integer and widths three of them, got {width!r}, {widths!r}")
    return widths  # type: ignore[return-value]


def init_weights(model: nn.Module, init: str = "he-fan-out") -> None:
    """The initialisation ``init`` names (``INIT_MODES``): He et al. 2015 ("Delving deep into rectifiers") normal
    init of the convolutions in fan-out (the papers') or fan-in mode, BN as identity, the classifier He-normal with a
    zero bias; or, for torch-default, nothing (the modules keep PyTorch's own)."""
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {', '.join(INIT_MODES)}, got {init!r}")
    mode = INIT_MODES[init]
    if mode is None:
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            nn.init.zeros_(m.bias)


def _preact_shortcut(in_channels: int, out_channels: int, stride: int, shortcut: str) -> nn.Module | None:
    """Identity where the shape stays; where it changes, A pads zeros, B a 1x1 projection (no BN: the block's
    pre-activation comes before it, as in He et al. 2016b's code); None for the plain net."""
    if shortcut == "none":
        return None
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if shortcut == "A":
        return PadShortcut(in_channels, out_channels, stride)
    return nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016b, Fig. 1b): BN-ReLU-conv3x3, BN-ReLU-[dropout]-conv3x3, plus the
    input unchanged (no ReLU after the addition: the identity path is clean). With ``dropout`` it is the wide
    ResNet's block (Zagoruyko & Komodakis 2016, Fig. 1d). A projection shortcut takes the pre-activated input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = _preact_shortcut(in_channels, out_channels, stride, shortcut)

    def residual(self, a: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.dropout(F.relu(self.bn2(self.conv1(a)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.relu(self.bn1(x))
        out = self.residual(a)
        if self.shortcut is None:
            return out
        return out + self.shortcut(a if isinstance(self.shortcut, nn.Conv2d) else x)


class PreActBottleneck(PreActBlock):
    """Pre-activation bottleneck (He et al. 2016b): BN-ReLU-conv1x1 (w, the stage's stride, as the authors' code
    KaimingHe/resnet-1k-layers has it), BN-ReLU-conv3x3 (w), BN-ReLU-conv1x1 (4w), plus the input unchanged."""

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: str, dropout: float = 0.0):
        nn.Module.__init__(self)
        mid = out_channels // self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, stride, 0, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, 1, 0, bias=False)
        self.shortcut = _preact_shortcut(in_channels, out_channels, stride, shortcut)

    def residual(self, a: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return self.conv3(F.relu(self.bn3(out)))


class PreActResNet(nn.Module):
    """Pre-activation CIFAR ResNets: ``arch`` "preact" (basic blocks, 6n+2), "preact-bottleneck" (9n+2; stages
    output 4w, 8w, 16w) or "wrn" (basic blocks with dropout, 6n+4, a 16-filter stem and stages of width, 2 width,
    4 width = 16k, 32k, 64k). A conv stem, three stages (stride 2 at stages 2 and 3), then the final BN-ReLU that
    pre-activation needs, global average pooling and one linear layer."""

    def __init__(self, arch: str, depth: int, shortcut: str = "A", width: int = 16, dropout: float = 0.0,
                 num_classes: int = 10, widths: tuple[int, ...] = (), stem_width: int = 0, init: str = "he-fan-out"):
        super().__init__()
        n = blocks_per_stage(arch, depth)
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {', '.join(SHORTCUTS)}, got {shortcut!r}")
        widths = _stage_widths(width, widths)
        if dropout and arch != "wrn" or not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1) and is for arch wrn only, got {dropout!r}")
        self.arch, self.depth, self.shortcut, self.width, self.num_classes = arch, depth, shortcut, widths[0], \
            num_classes
        self.widths = widths
        block = PreActBottleneck if arch == "preact-bottleneck" else PreActBlock
        expansion = 4 if arch == "preact-bottleneck" else 1
        stem = WRN_BASE if arch == "wrn" else stem_width or widths[0]
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        in_ch, stages = stem, []
        for i in range(3):
            out_ch = widths[i] * expansion
            blocks = []
            for j in range(n):
                blocks.append(block(in_ch, out_ch, 2 if (i > 0 and j == 0) else 1, shortcut, dropout))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.bn = nn.BatchNorm2d(in_ch)
        self.fc = nn.Linear(in_ch, num_classes)
        init_weights(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(F.relu(self.bn(x)).mean((2, 3)))

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, depth={self.depth}, shortcut={self.shortcut!r}, widths={self.widths}"


def cifar_resnet(depth: int, shortcut: str = "A", width: int = 16, num_classes: int = 10, **kw) -> CifarResNet:
    """Today's CIFAR ResNet (``arch`` "resnet"). Raises ValueError for a depth that is not 6n+2 or bad options.
    ``kw``: widths, stem_width, init (see CifarResNet)."""
    return CifarResNet(depth, shortcut=shortcut, width=width, num_classes=num_classes, **kw)


def create_model(arch: str, depth: int, shortcut: str = "A", width: int = 16, dropout: float = 0.0,
                 num_classes: int = 10, *, widths: tuple[int, ...] = (), stem_width: int = 0,
                 init: str = "he-fan-out") -> nn.Module:
    """The one place that builds a model: ``MODELS[arch]`` (as timm's ``create_model``). Raises ValueError for an
    unknown architecture, a depth it does not accept (the message names its rule) or bad options."""
    if arch not in MODELS:
        raise ValueError(f"arch must be one of {', '.join(MODELS)}, got {arch!r}")
    return MODELS[arch](depth=depth, shortcut=shortcut, width=width, dropout=dropout, num_classes=num_classes,
                        widths=widths, stem_width=stem_width, init=init)


def model_for(cfg, num_classes: int = 10) -> nn.Module:
    """The net a RunConfig describes (its arch, depth, shortcut, stage widths, stem, dropout and init)."""
    return create_model(cfg.arch, cfg.depth, cfg.shortcut, cfg.width, cfg.dropout, num_classes, widths=cfg.widths,
                        stem_width=cfg.stem_width, init=cfg.init)


def _resnet(depth: int, shortcut: str, width: int, dropout: float, num_classes: int, **kw) -> nn.Module:
    if dropout:
        raise ValueError("dropout is for arch wrn only")
    return cifar_resnet(depth, shortcut, width, num_classes, **kw)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet": _resnet,
    "preact": partial(PreActResNet, "preact"),
    "preact-bottleneck": partial(PreActResNet, "preact-bottleneck"),
    "wrn": partial(PreActResNet, "wrn"),
}


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all of them, as the paper counts; buffers such as BN running stats excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
