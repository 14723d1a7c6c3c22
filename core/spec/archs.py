"""The architectures a run can train (``RunConfig.arch``), which depths each accepts, and the papers' numbers.

* ``resnet``: He et al. 2016a ("Deep Residual Learning"), the CIFAR ResNet of Table 6: basic blocks, depth 6n+2.
* ``preact``: He et al. 2016b ("Identity Mappings in Deep Residual Networks", ECCV): BN-ReLU-conv blocks with a
  clean identity path, basic blocks, depth 6n+2 (PreAct-110).
* ``preact-bottleneck``: the same with bottleneck blocks (1x1, 3x3, 1x1, 4x expansion), depth 9n+2 (PreAct-164,
  PreAct-1001). A separate name because depths such as 20, 110 and 164 are both 6n+2 and 9n+2: the depth alone
  cannot say which block the paper meant.
* ``wrn``: Zagoruyko & Komodakis 2016 ("Wide Residual Networks", BMVC): pre-activation basic blocks with dropout
  between the convolutions, depth 6n+4. The widening factor k is ``width / 16`` (``width`` stays the filters of
  the first stage for every architecture: WRN-28-10 is depth 28, width 160).

core/train/models.py builds them; this module holds only the rules, so the config can validate without torch.
"""
from __future__ import annotations

from core.util.formatting import number_text

ARCHS = ("resnet", "preact", "preact-bottleneck", "wrn")
# depth = per * n + extra with n >= 1 blocks per stage
_DEPTH_RULES = {"resnet": (6, 2), "preact": (6, 2), "preact-bottleneck": (9, 2), "wrn": (6, 4)}
_EXAMPLES = {"resnet": "8, 14, 20, 32, 44, 56, 110, 1202", "preact": "20, 56, 110", "preact-bottleneck": "164, 1001",
             "wrn": "10, 16, 28, 40"}
WRN_BASE = 16     # the WRN paper's first-stage filters before widening: k = width / 16

# CIFAR-10 test error (%) of the papers, the follow-up architectures; Table 6 stays in config.PAPER_ERRORS.
# He et al. 2016b, Table 3 (110, basic) and Table 4 (164, 1001; 1001 reported as 4.92 (4.89 +- 0.14)).
PREACT_ERRORS = {("preact", 110): 6.37, ("preact-bottleneck", 164): 5.46, ("preact-bottleneck", 1001): 4.92}
# Zagoruyko & Komodakis 2016, Tables 4 and 6: (depth, k, dropout) -> error.
WRN_ERRORS = {(16, 8, 0.0): 4.81, (28, 10, 0.0): 4.17, (28, 10, 0.3): 3.89, (40, 4, 0.0): 4.97}


def depth_rule(arch: str) -> str:
    per, extra = _DEPTH_RULES[arch]
    return f"{per}n+{extra}"


def depth_problem(arch: str, depth: int) -> str | None:
    """What is wrong with ``depth`` for ``arch`` (naming the depths it accepts), or None when it fits."""
    per, extra = _DEPTH_RULES[arch]
    if isinstance(depth, int) and not isinstance(depth, bool) and depth >= per + extra and not (depth - extra) % per:
        return None
    others = "; ".join(f"{a} {depth_rule(a)}" for a in ARCHS if a != arch)
    return (f"depth must be {depth_rule(arch)} with n >= 1 for arch {arch} ({_EXAMPLES[arch]}, ...), got "
            f"{number_text(depth)} (other architectures: {others})")


def blocks_per_stage(arch: str, depth: int) -> int:
    """n for ``depth`` under ``arch``'s rule; raises ValueError naming the accepted depths."""
    problem = depth_problem(arch, depth)
    if problem:
        raise ValueError(problem)
    per, extra = _DEPTH_RULES[arch]
    return (depth - extra) // per


def arch_paper_error(arch: str, depth: int, shortcut: str, width: int, dropout: float) -> float | None:
    """The follow-up papers' CIFAR-10 error for this net (projection shortcuts "B", as both papers use), else None."""
    if shortcut != "B":
        return None
    if arch in ("preact", "preact-bottleneck"):
        return PREACT_ERRORS.get((arch, depth)) if width == 16 and dropout == 0 else None
    if arch == "wrn" and width % WRN_BASE == 0:
        return WRN_ERRORS.get((depth, width // WRN_BASE, round(dropout, 3)))
    return None


def conv_cost(arch: str, depth: int, width: int) -> float:
    """Multiply-accumulates of the residual stages' convolutions per 32x32 image, the part that sets a net's speed:
    every stage costs the same (channels double as the side halves), a basic block 2 x 9 w^2 per pixel of the first
    stage, a bottleneck (1x1 4w->w, 3x3, 1x1 w->4w) 17 w^2. Used to scale a measured speed to another net."""
    try:
        n = blocks_per_stage(arch, depth)
    except ValueError:
        return 0.0
    per_block = 17 if arch == "preact-bottleneck" else 18
    return 3.0 * n * per_block * width * width * 32 * 32
