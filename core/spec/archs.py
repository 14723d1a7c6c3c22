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

Stage widths: ``widths`` gives each of the three stages its filters (the lab report's 30/60/90), ``width`` the first
stage's (the short form: w, 2w, 4w); ``stem_width`` the stem's (0: the first stage's; the course code's ResNet had a
64-filter stem). resnet and preact take any widths; preact-bottleneck and wrn keep the doubling (a WRN's k is
``width / 16``) and their own stem.

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
FREE_WIDTHS = ("resnet", "preact")      # the architectures whose stages take any widths and a stem of its own

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


def depth_help(arch: str) -> str:
    """The depth field's help for ``arch``: its rule and examples, then the other architectures' rules."""
    if arch not in ARCHS:
        return "; ".join(f"{a} {depth_rule(a)}" for a in ARCHS)
    others = "; ".join(f"{a} {depth_rule(a)}" for a in ARCHS if a != arch)
    block = {"preact-bottleneck": "bottleneck blocks", "wrn": "wide basic blocks"}.get(arch, "basic blocks")
    return (f"Network depth for {arch}: {depth_rule(arch)} ({_EXAMPLES[arch]}, ...), n {block} per stage "
            f"(other architectures: {others})")


def dropout_help(arch: str) -> str:
    """The dropout field's help for ``arch``: only a wide net has dropout."""
    if arch == "wrn":
        return "Dropout between a wide block's two convolutions (0 = none; 0.3 in the WRN paper's best run)"
    return f"wrn only: {arch} has no dropout (leave 0; choose arch wrn to use it)"


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


def doubling(width: int) -> tuple[int, int, int]:
    """The paper's stage widths for a first stage of ``width`` filters: (w, 2w, 4w)."""
    return (width, 2 * width, 4 * width)


def widths_text(widths: tuple[int, ...], stem_width: int = 0) -> str:
    """How a net's widths read in labels: 'w16' for the paper's doubling, '30/60/90' otherwise, ' stem 64' added
    where the stem has its own width."""
    text = f"w{widths[0]}" if tuple(widths) == doubling(widths[0]) else "/".join(map(str, widths))
    return text + (f" stem {stem_width}" if stem_width and stem_width != widths[0] else "")


def widths_problem(arch: str, widths: tuple[int, ...], width: int, stem_width: int) -> dict[str, str]:
    """What is wrong with these stage widths for ``arch`` (field -> message): three positive numbers agreeing with
    ``width``; custom widths and a stem of its own only where the architecture takes them."""
    e: dict[str, str] = {}
    if len(widths) != 3 or any(not isinstance(w, int) or w < 1 for w in widths):
        e["widths"] = f"widths must be three positive numbers of filters, one per stage, e.g. 30,60,90, got " \
                      f"{','.join(map(str, widths)) or 'none'}"
    elif widths[0] != width:
        e["widths"] = (f"widths {','.join(map(str, widths))} and width {width} disagree: width is the first stage's "
                       f"filters; give one of them")
    elif arch not in FREE_WIDTHS and tuple(widths) != doubling(width):
        e["widths"] = (f"arch {arch} keeps the doubling w, 2w, 4w (set width; a WRN's k is width/16); widths "
                       f"{','.join(map(str, widths))} is for {' or '.join(FREE_WIDTHS)}")
    if stem_width < 0:
        e["stem_width"] = f"stem_width must be >= 0 (0 = the first stage's width), got {number_text(stem_width)}"
    elif stem_width and arch not in FREE_WIDTHS:
        e["stem_width"] = f"arch {arch} keeps its own stem; stem_width is for {' or '.join(FREE_WIDTHS)} (leave 0)"
    return e


def conv_cost(arch: str, depth: int, width: int, widths: tuple[int, ...] = ()) -> float:
    """Multiply-accumulates of the residual stages' convolutions per 32x32 image, the part that sets a net's speed:
    a basic block costs 2 x 9 c^2 per pixel of its stage (32x32, 16x16, 8x8 for stage widths c1, c2, c3: with the
    paper's doubling every stage costs the same), a bottleneck (1x1 4w->w, 3x3, 1x1 w->4w) 17 w^2. Used to scale a
    measured speed to another net."""
    try:
        n = blocks_per_stage(arch, depth)
    except ValueError:
        return 0.0
    per_block = 17 if arch == "preact-bottleneck" else 18
    c1, c2, c3 = widths if len(widths) == 3 else doubling(width)
    return float(n * per_block * (c1 * c1 * 1024 + c2 * c2 * 256 + c3 * c3 * 64))
