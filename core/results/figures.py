"""Fig. 6 and Fig. 7 of He et al. 2016 from run folders, drawn with matplotlib (Agg: no display needed).

* ``fig6``: training error (thin, dashed) and test error (bold) over iterations; plain nets in the left panel and
  ResNets on the right (a third panel for option B when present); one colour per depth. A seed group is drawn as
  its mean curve with a shaded min-max band.
* ``fig7``: the standard deviation of each 3x3 layer's response (after BN, before the addition and the ReLU), by
  layer index (top) and sorted by magnitude (bottom), for plain and residual nets.

Figures are built as ``matplotlib.figure.Figure`` objects (no pyplot, so no global state and no display) and
saved by ``save``; tests check the objects (axes, lines), not pixels.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.results.groups import KIND_TITLES, KINDS, RunGroup, variant_labels
from core.util.errors import MissingDependency, ReportError

FIGURE_FORMATS = ("png", "svg", "pdf")
PANEL_TITLES = {"none": "plain networks", "A": "ResNets (option A)", "B": "ResNets (option B)"}
KIND_STYLES = {"none": "--", "A": "-", "B": ":"}
DPI = 150


def matplotlib_figure():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("the figures need matplotlib, which is not installed here: pip install matplotlib "
                          "(or reinstall ResLab: pip install -e .)") from None
    matplotlib.rcParams["svg.hashsalt"] = "reslab"     # stable SVG ids: re-running a report gives the same file
    return Figure


def _colours(keys: Sequence) -> dict:
    """One colour per key (a depth), in order, from matplotlib's default cycle."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    return {k: palette[i % len(palette)] for i, k in enumerate(dict.fromkeys(keys))}


def _y_top(values: Sequence[float]) -> float:
    """The paper's 0-20 % range when the curves end low, else twice the highest end (up to 100 %)."""
    worst = max([v for v in values if math.isfinite(v)] or [10.0])
    return float(min(100, 5 * math.ceil(max(20.0, 2 * worst) / 5)))


def _y_range(ends: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """The error axis: the paper's 0-20 % (or twice the highest end) when the curves end low; otherwise fitted to
    every point drawn, in steps of 5 %, so curves that all lie between 60 and 90 % are not squeezed into 0-100 %."""
    top = _y_top(ends)
    finite = [v for v in values if math.isfinite(v)]
    if top < 100 or not finite:
        return 0.0, top
    lo, hi = min(finite), max(finite)
    return float(max(0, 5 * math.floor((lo - 2) / 5))), float(min(100, 5 * math.ceil((hi + 2) / 5)))


def distinct(labels: Sequence[str], groups: Sequence[RunGroup]) -> list[str]:
    """Legend labels that never repeat: two groups with the same label (a 1- and a 2-epoch run of one net) get their
    length ('1 epoch', '2 epochs') or, when that is the same too, their first run's id."""
    out = list(labels)
    for label in {lab for lab in labels if labels.count(lab) > 1}:
        at = [i for i, lab in enumerate(labels) if lab == label]
        lengths = [groups[i].runs[0].epochs_done for i in at]
        for i, n in zip(at, lengths):
            extra = (f"{n} epoch" + ("s" if n != 1 else "")) if len(set(lengths)) == len(at) else groups[i].runs[0].id
            out[i] = f"{label} [{extra}]"
    return out


def fig6(groups: Sequence[RunGroup]):
    """Error curves as the paper's Fig. 6: one panel per network kind present, two lines per group."""
    Figure = matplotlib_figure()
    kinds = [k for k in KINDS if any(g.kind == k for g in groups)]
    if not kinds:
        raise ReportError("no runs to draw")
    variants = variant_labels(groups)
    colour = _colours(sorted({(g.depth, variants[id(g)]) for g in groups}))
    fig = Figure(figsize=(5.2 * len(kinds), 4.0), layout="constrained")
    axes = fig.subplots(1, len(kinds), sharex=True, sharey=True, squeeze=False)[0]
    ends, values = [], []                      # where the curves end, and every point: the y range must show them
    labels = [g.name + (f" ({variants[id(g)]})" if variants[id(g)] else "") + (f", n={g.n}" if g.n > 1 else "")
              for g in groups]
    label_of = {id(g): label for g, label in zip(groups, distinct(labels, groups))}
    for ax, kind in zip(axes, kinds):
        for g in (g for g in groups if g.kind == kind):
            c = colour[(g.depth, variants[id(g)])]
            train, test = g.curves()
            label = label_of[id(g)]
            ends += [b.mean[-1] for b in (train, test) if b is not None]
            values += [v for b in (train, test) if b is not None for v in b.mean]
            if train is not None:
                ax.plot(train.xs, train.mean, linestyle="--", linewidth=0.8, color=c)
                if train.n > 1:
                    ax.fill_between(train.xs, train.lo, train.hi, color=c, alpha=0.12, linewidth=0)
            if test is not None:
                few = len(test.xs) <= 3
                ax.plot(test.xs, test.mean, linestyle="-", linewidth=2.2, color=c, label=label,
                        marker="o" if few else None, markersize=4)
                if test.n > 1:
                    ax.fill_between(test.xs, test.lo, test.hi, color=c, alpha=0.25, linewidth=0)
        ax.set_title(PANEL_TITLES[kind])
        ax.set_xlabel("iterations")
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0)
        # under the panel, not on the curves (the paper's curves fill the upper right as they start)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize="small", frameon=False, ncols=2)
    axes[0].set_ylabel("error (%)")
    axes[0].set_ylim(*_y_range(ends, values))
    fig.suptitle("dashed: training error, bold: test error; shaded: min-max over seeds", fontsize="small",
                 color="#555555")
    return fig


X_LABELS = {"iter": "iterations", "epoch": "epochs", "time": "training time (s)"}


def _palette(n: int) -> list:
    """n distinct colours: matplotlib's 10-colour cycle, tab20 beyond 10, evenly spaced viridis beyond 20."""
    from matplotlib import colormaps

    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    return [colormaps["viridis"](i / max(1, n - 1)) for i in range(n)]


def fig_sweep(groups: Sequence[RunGroup], labels: Sequence[str], x: str = "iter", title: str = ""):
    """A sweep's curves: test error (bold) and training error (dashed) on top, the learning rate below (so the
    timing of a decay shows), one colour per group, labelled only by what varies (``labels``, one per group). The
    legend stands outside the axes to the right, in columns of at most 18 entries, so 20+ runs stay readable."""
    Figure = matplotlib_figure()
    if not groups:
        raise ReportError("no runs to draw")
    colours = _palette(len(groups))
    ncol = max(1, math.ceil(len(groups) / 18))
    fig = Figure(figsize=(7.0 + 2.4 * ncol, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    ends, handles, rates = [], [], []
    for g, label, c in zip(groups, labels, colours):
        train, test = g.curves(x)
        ends += [b.mean[-1] for b in (train, test) if b is not None]
        if train is not None:
            top.plot(train.xs, train.mean, linestyle="--", linewidth=0.8, color=c)
        if test is not None:
            line, = top.plot(test.xs, test.mean, linewidth=2.2, color=c, marker="o" if len(test.xs) <= 12 else None,
                             markersize=3.5, label=f"{label} (n={g.n})" if g.n > 1 else label)
            handles.append(line)
            if test.n > 1:
                top.fill_between(test.xs, test.lo, test.hi, color=c, alpha=0.18, linewidth=0)
        lr = g.lr_curve(x)
        if lr is not None:     # a row's lr is the rate of the iterations up to it: a step from the left, from 0
            bottom.plot([0.0, *lr.xs], [lr.mean[0], *lr.mean], color=c, linewidth=1.2, drawstyle="steps-pre")
            rates += [v for v in lr.mean if v > 0]
    top.set_ylabel("error (%)")
    top.set_ylim(0, _y_top(ends))
    top.grid(True, alpha=0.3)
    top.set_title(title or "test error (bold) and training error (dashed)", fontsize="medium")
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel(X_LABELS.get(x, x))
    bottom.set_xlim(left=0)
    if rates and max(rates) > 20 * min(rates):     # SGD's 0.1 beside Adam's 0.001: both show on a log axis
        bottom.set_yscale("log")
    else:
        bottom.set_ylim(bottom=0)
    bottom.grid(True, alpha=0.3)
    fig.legend(handles=handles, loc="outside right upper", ncols=ncol, fontsize="small", frameon=False)
    return fig


@dataclass
class ResponseCurve:
    """Layer-response standard deviations of one network (a group: the mean over its runs)."""

    name: str                 # 'plain-20', 'ResNet-56'
    kind: str                 # none | A | B
    depth: int
    stds: list[float]         # one per 3x3 layer, in network order
    n: int = 1                # runs averaged
    variant: str = ""         # what else sets it apart from curves of the same depth ('width=64'), as in Fig. 6


def fig7(curves: Sequence[ResponseCurve]):
    """The paper's Fig. 7: std of layer responses by layer index (top) and sorted, largest first (bottom)."""
    Figure = matplotlib_figure()
    from matplotlib.ticker import MaxNLocator

    if not curves:
        raise ReportError("no layer responses to draw")
    colour = _colours(sorted({(c.depth, c.variant) for c in curves}))
    fig = Figure(figsize=(8.4, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    handles = []
    for c in sorted(curves, key=lambda c: (KINDS.index(c.kind), c.depth, c.variant)):
        label = c.name + (f" ({c.variant})" if c.variant else "") + (f", mean of {c.n}" if c.n > 1 else "")
        style = dict(color=colour[(c.depth, c.variant)], linestyle=KIND_STYLES.get(c.kind, "-"), linewidth=1.4,
                     marker=".", markersize=3)
        idx = list(range(1, len(c.stds) + 1))
        handles += top.plot(idx, c.stds, label=label, **style)
        bottom.plot(idx, sorted(c.stds, reverse=True), label=label, **style)
    top.set_title("std of layer responses (after BN, before addition and ReLU)")
    top.set_xlabel("layer index (original order)")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))    # a layer index is whole: no tick at 2.5
    fig.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)   # off the axes
    return fig


def save(fig, out_dir: Path, stem: str, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Write the figure as ``stem.png``/``.svg``/``.pdf`` (those asked for) in ``out_dir``; returns the paths."""
    paths = []
    for fmt in formats:
        path = Path(out_dir) / f"{stem}.{fmt}"
        fig.savefig(path, format=fmt, dpi=DPI, bbox_inches="tight",
                    metadata={"svg": {"Date": None}, "pdf": {"CreationDate": None}}.get(fmt))
        paths.append(path)
    return paths


__all__ = ["fig6", "fig7", "fig_sweep", "save", "ResponseCurve", "FIGURE_FORMATS", "KIND_TITLES"]
