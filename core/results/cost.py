"""Error against cost: what a sweep's nets bought with their time and their parameters (issue 28).

The lab report found that wider stages cost time and bought accuracy, and that a smaller batch bought accuracy too.
For a sweep whose groups differ in what a net costs (``COST_KEYS``: width, depth, batch, architecture), ``fig_cost``
draws each group's final test error (mean over its seeds, whiskers from the lowest to the highest seed) against its
training time per run (status.json ``elapsed_s``: training and evaluation, pauses excluded) and against its
parameters (counted exactly on a model built on torch's meta device: no memory, no weights drawn), one point per group,
and the Pareto front: the groups no other group beats on both error and cost.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from core.results.groups import RunGroup

COST_KEYS = ("width", "widths", "stem_width", "depth", "batch_size", "arch")
CLASSES = {"cifar100": 100}                 # cifar10 and the synthetic set: 10


@dataclass(frozen=True)
class Cost:
    """One group's point: its label, parameters, mean seconds per run, and final test errors (mean, lowest, highest)."""

    label: str
    parameters: int
    seconds: float | None
    mean: float
    lo: float
    hi: float
    n: int


def varies_cost(varied: Sequence[str]) -> bool:
    """A sweep whose groups differ in what their nets cost (the settings in ``COST_KEYS``)."""
    return any(k in COST_KEYS for k in varied)


def parameters(g: RunGroup) -> int:
    """The group's net's parameters, counted on the meta device (exact, without allocating its weights)."""
    import torch

    from core.train.models import count_parameters, model_for

    with torch.device("meta"):
        return count_parameters(model_for(g.config, CLASSES.get(g.config.dataset, 10)))


def seconds(g: RunGroup) -> float | None:
    """Mean seconds per run of the group (training and evaluation, pauses excluded); None where none is recorded."""
    times = [float(i.duration_s) for i in g.runs if isinstance(i.duration_s, (int, float)) and i.duration_s > 0]
    return statistics.fmean(times) if times else None


def costs(groups: Sequence[RunGroup], labels: Sequence[str]) -> dict[int, Cost]:
    """id(group) -> its point, for each group with a final error (in the order given)."""
    return {id(g): Cost(label, parameters(g), seconds(g), g.mean, min(g.finals), max(g.finals), g.n)
            for g, label in zip(groups, labels) if g.finals}


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, error) that no other point beats on both, by increasing cost: each one's error is
    below that of every cheaper point."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def fig_cost(points: Sequence[Cost], title: str = ""):
    """Final test error against training time (left) and parameters (right): a point per group with its seed
    spread, labelled, the Pareto front as a dashed step line."""
    from core.results.figures import _palette, matplotlib_figure

    Figure = matplotlib_figure()
    fig = Figure(figsize=(11.0, 4.6), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    colours = _palette(len(points))
    panels = ((axes[0], lambda p: p.seconds, "training time per run"),
              (axes[1], lambda p: p.parameters, "parameters"))
    for ax, x_of, xlabel in panels:
        shown = [(p, c) for p, c in zip(points, colours) if x_of(p) is not None]
        for p, c in shown:
            ax.errorbar([x_of(p)], [p.mean], yerr=[[p.mean - p.lo], [p.hi - p.mean]], fmt="o", color=c, capsize=4,
                        markersize=7, label=p.label + (f" (n={p.n})" if p.n > 1 else ""))
        front = pareto([(x_of(p), p.mean) for p, _ in shown])
        if len(front) > 1:
            xs, ys = [x_of(shown[i][0]) for i in front], [shown[i][0].mean for i in front]
            ax.plot(xs, ys, linestyle="--", color="#555555", linewidth=1.2, drawstyle="steps-post", zorder=0,
                    label="Pareto front")
        _log_axis(ax, _seconds_text if x_of is panels[0][1] else _count_text)
        ax.set_xlabel(xlabel + " (log scale)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("final test error (%)")
    axes[0].set_title("error against time", fontsize="medium")
    axes[1].set_title("error against parameters", fontsize="medium")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def _log_axis(ax, text) -> None:
    """A log x axis labelled at 1, 2 and 5 of each decade in plain words ('30s', '2m', '200k', '1.2M'), not 6x10^1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: text(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.margins(x=0.15)


def _seconds_text(v: float) -> str:
    return f"{v:g}s" if v < 10_000 else f"{v / 3600:.3g}h"


def _count_text(v: float) -> str:
    return f"{v / 1e6:g}M" if v >= 1e6 else f"{v / 1e3:g}k" if v >= 1e3 else f"{v:g}"
