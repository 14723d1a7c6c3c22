"""`report --study NAME`: a study's figures and report.md (core/study/summary.py gives the data).

Figures (matplotlib ``Figure`` objects, no pyplot), each a PNG:

* ``history``: each trial's objective (pruned trials at their last validation error, hollow) and the best so far;
* ``intermediate``: validation error per epoch of every trial, the rungs marked, where each stopped and was promoted;
* ``slices``: the objective against each searched setting (log axes for log ranges);
* ``parallel``: parallel coordinates of the finished trials, one axis per setting and one for the objective;
* ``importances``: Optuna's parameter importances (fANOVA) once enough trials finished;
* ``pareto``: with two objectives, every finished trial and the Pareto front.

report.md captions them with the data and the budget, lists the top trials, and the confirmed settings (`study
confirm`): the test error, mean ± std over seeds, of settings chosen on validation.
"""
from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

from core.results.figures import DPI, matplotlib_figure
from core.spec.config import RunConfig
from core.spec.grid import describe
from core.store.runs import RunStore
from core.study.spec import StudySpec
from core.util.files import atomic_write_bytes

DONE, PRUNED = "#1f77b4", "#9a9a9a"


def write_study_report(store: RunStore, study, spec: StudySpec, data: dict, out: Path) -> list[Path]:
    """Write the figures and report.md into ``out``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    figures = {"history": fig_history(data), "intermediate": fig_intermediate(data, spec),
               "slices": fig_slices(data, spec), "parallel": fig_parallel(data, spec)}
    importances = param_importances(study)
    if importances:
        figures["importances"] = fig_importances(importances)
    if len(spec.objectives) == 2:
        figures["pareto"] = fig_pareto(data, spec)
    written = []
    for name, fig in figures.items():
        if fig is not None:
            fig.savefig(out / f"{name}.png", dpi=DPI)
            written.append(out / f"{name}.png")
    text = report_md(store, spec, data, [p.name for p in written], importances)
    atomic_write_bytes(out / "report.md", text.encode())
    return [*written, out / "report.md"]


# -- figures ---------------------------------------------------------------------------------------------------------
def _figure(width: float = 7.0, height: float = 4.2):
    return matplotlib_figure()(figsize=(width, height), layout="constrained")


def _value(t: dict) -> float | None:
    """A trial's first objective: its value when finished, its last validation error when pruned."""
    if t["values"]:
        return t["values"][0]
    return t["intermediate"][max(t["intermediate"])] if t["intermediate"] else None


def fig_history(data: dict):
    fig = _figure()
    ax = fig.add_subplot()
    best, line = math.inf, []
    for t in data["trials"]:
        v = _value(t)
        if v is None:
            continue
        done = t["state"] == "complete"
        ax.scatter([t["number"]], [v], s=28, facecolors=DONE if done else "none", edgecolors=DONE if done else PRUNED,
                   zorder=3)
        if done:
            best = min(best, v)
        if math.isfinite(best):
            line.append((t["number"], best))
    if line:
        ax.step(*zip(*line), where="post", color="#d62728", label="best so far (finished trials)")
    ax.scatter([], [], s=28, color=DONE, label="finished")
    ax.scatter([], [], s=28, facecolors="none", edgecolors=PRUNED, label="stopped at a rung (last val err)")
    ax.set(xlabel="trial", ylabel=f"{data['objectives'][0]} (%)" if data["objectives"][0] == "val_err" else
           data["objectives"][0], title=f"Study {data['study']}: optimisation history")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def fig_intermediate(data: dict, spec: StudySpec):
    fig = _figure()
    ax = fig.add_subplot()
    for k, epoch in enumerate(data["rungs"], start=1):
        ax.axvline(epoch, color="#555", ls=":", lw=1)
        ax.text(epoch, 1.0, f" rung {k}", transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="#555")
    for t in data["trials"]:
        points = sorted(t["intermediate"].items())
        if not points:
            continue
        done = t["state"] == "complete"
        xs, ys = zip(*points)
        ax.plot(xs, ys, color=DONE if done else PRUNED, lw=1.6 if done else 1, alpha=0.9, marker=".", ms=3)
        if not done:
            ax.plot(xs[-1], ys[-1], "x", color="#d62728", ms=6)
        for epoch in t["promoted_at"]:
            if epoch in t["intermediate"]:
                ax.plot(epoch, t["intermediate"][epoch], "^", color="#2ca02c", ms=7)
    ax.plot([], [], color=DONE, label="trained to the end")
    ax.plot([], [], color=PRUNED, label="stopped at a rung")
    ax.plot([], [], "x", color="#d62728", label="where it stopped")
    ax.plot([], [], "^", color="#2ca02c", ls="none", label="promoted later (resumed)")
    ax.set(xlabel="epoch", ylabel="validation error (%)", xlim=(0.5, spec.epochs + 0.5),
           title="Validation error per epoch, rungs marked")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def _axis_values(dim, values: list) -> tuple[list[float], list[str] | None]:
    """Numbers to draw for a dimension's values (index of a choice) and the choices' labels."""
    if dim.choices:
        labels = [str(c) if not isinstance(c, (list, tuple)) else ",".join(map(str, c)) for c in dim.choices]
        plain = [dim.distribution().choices.index(v) if v in dim.distribution().choices else 0 for v in values]
        return [float(p) for p in plain], labels
    return [float(v) for v in values], None


def fig_slices(data: dict, spec: StudySpec):
    dims = spec.dims
    fig = _figure(3.4 * len(dims), 3.4)
    axes = fig.subplots(1, len(dims), squeeze=False)[0]
    trials = [t for t in data["trials"] if _value(t) is not None]
    for ax, dim in zip(axes, dims):
        xs, labels = _axis_values(dim, [t["params"].get(dim.field) for t in trials])
        for x, t in zip(xs, trials):
            done = t["state"] == "complete"
            ax.scatter([x], [_value(t)], s=26, facecolors=DONE if done else "none", edgecolors=DONE if done else PRUNED)
        if labels:
            ax.set_xticks(range(len(labels)), labels)
        elif dim.log:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())     # 2x10^-5 3x10^-5 ... ran into each other
        ax.set(xlabel=dim.field, title=dim.text)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{data['objectives'][0]} (filled: finished)")
    return fig


def fig_parallel(data: dict, spec: StudySpec):
    trials = [t for t in data["trials"] if _value(t) is not None]
    if not trials:
        return None
    dims = spec.dims
    fig = _figure(max(6.0, 1.9 * (len(dims) + 1)), 4.2)
    ax = fig.add_subplot()
    columns, ticks = [], []
    for dim in dims:
        xs, labels = _axis_values(dim, [t["params"].get(dim.field) for t in trials])
        if dim.log:
            xs = [math.log10(x) for x in xs]
        lo, hi = (0.0, max(1.0, len(labels) - 1.0)) if labels else (math.log10(dim.low), math.log10(dim.high)) \
            if dim.log else (dim.low, dim.high)
        columns.append([(x - lo) / ((hi - lo) or 1) for x in xs])
        ticks.append(f"{dim.field}\n{_end(dim, lo, labels, 0)} .. {_end(dim, hi, labels, -1)}")
    values = [_value(t) for t in trials]
    lo, hi = min(values), max(values)
    columns.append([(v - lo) / ((hi - lo) or 1) for v in values])
    ticks.append(f"{data['objectives'][0]}\n{lo:.3g} .. {hi:.3g}")
    import matplotlib

    cmap = matplotlib.colormaps["viridis_r"]
    for i, t in sorted(enumerate(trials), key=lambda it: it[1]["state"] == "complete"):   # finished ones on top
        done = t["state"] == "complete"
        ax.plot(range(len(columns)), [c[i] for c in columns], color=cmap(columns[-1][i]) if done else PRUNED,
                lw=1.8 if done else 0.9, alpha=0.95 if done else 0.6)
    for x in range(len(columns)):
        ax.axvline(x, color="#333", lw=0.8)
    ax.set_xticks(range(len(columns)), ticks, fontsize=8)
    ax.set_yticks([0, 1], ["low", "high"])
    ax.set_title("Parallel coordinates (yellow = best; grey: stopped at a rung)", fontsize=10)
    return fig


def _end(dim, value: float, labels, index: int) -> str:
    if labels:
        return labels[index]
    return f"{10 ** value:.2g}" if dim.log else f"{value:.3g}"


def param_importances(study) -> dict[str, float]:
    """Optuna's fANOVA importances of the first objective; {} when too few trials finished to say."""
    from optuna.trial import TrialState

    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 3:
        return {}
    try:
        import optuna

        return dict(optuna.importance.get_param_importances(study, target=lambda t: t.values[0]))
    except (ValueError, RuntimeError, ImportError):
        return {}


def fig_importances(importances: dict[str, float]):
    fig = _figure(6.0, 1.2 + 0.5 * len(importances))
    ax = fig.add_subplot()
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color=DONE)
    ax.set(xlabel="importance (fANOVA, share of the objective's variance)", xlim=(0, 1),
           title="Which settings mattered")
    return fig


def pareto_front(points: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """The points no other point beats in both coordinates (both minimised), by the first coordinate."""
    front, best = [], math.inf
    for p in sorted(points):
        if p[1] < best:
            front.append(p)
            best = p[1]
    return front


def fig_pareto(data: dict, spec: StudySpec):
    points = [(t["values"][0], t["values"][1], t["number"]) for t in data["trials"] if t["state"] == "complete"]
    fig = _figure()
    ax = fig.add_subplot()
    if points:
        ax.scatter([p[0] for p in points], [p[1] for p in points], color=PRUNED, s=24, label="finished trials")
        front = pareto_front(points)
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="#d62728", marker="o",
                label="Pareto front")
        for x, y, n in front:
            ax.annotate(f"{n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    names = {"val_err": "validation error (%)", "train_time": "training time (s)"}
    ax.set(xlabel=names[spec.objectives[0]], ylabel=names[spec.objectives[1]], title="Pareto front (both minimised)")
    fig.legend(fontsize=8, loc="outside lower center", ncols=2)     # the front runs along the axes' edges
    ax.grid(alpha=0.3)
    return fig


# -- report.md -------------------------------------------------------------------------------------------------------
def caption(spec: StudySpec, data: dict) -> str:
    cfg = spec.config
    trials = data["trials"]
    counts = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "failed", "running")}
    full = len(trials) * spec.epochs
    images = f"{cfg.max_train_images:,} training images" if cfg.max_train_images else "the training set"
    return (f"Study {spec.name}: {len(trials)} trials of {cfg.label()} on {cfg.dataset} ({images}, "
            f"{cfg.val_split:,} of them held out for validation), up to {spec.epochs} epochs each; "
            f"{spec.budget_text()}. Trials: {counts['complete']} finished, {counts['pruned']} stopped at a rung, "
            f"{counts['failed']} failed, {counts['running']} open. Epochs trained in all: {data['epochs_trained']} "
            f"of the {full} that every trial at full length would take "
            f"({data['epochs_trained'] / max(1, full):.0%}). The objective is measured on the held-out images, "
            f"never on the test set.")


def report_md(store: RunStore, spec: StudySpec, data: dict, figures: list[str], importances: dict) -> str:
    lines = [f"# Study {spec.name}", "", caption(spec, data), ""]
    for name in figures:
        lines += [f"![{name}]({name})", ""]
    if importances:
        lines += ["Importances: " + ", ".join(f"{k} {v:.2f}" for k, v in importances.items()), ""]
    lines += ["## Top trials (chosen on validation)", "", "| rank | trial | " + " | ".join(spec.objectives)
              + " | epochs | settings | run |", "|---:|---:|" + "---:|" * len(spec.objectives) + "---:|---|---|"]
    done = sorted((t for t in data["trials"] if t["state"] == "complete"), key=lambda t: (t["values"][0], t["number"]))
    for rank, t in enumerate(done[:10], start=1):
        lines.append(f"| {rank} | {t['number']} | " + " | ".join(f"{v:.4g}" for v in t["values"])
                     + f" | {t['epochs']} | {_params(t['params'])} | {t['run']} |")
    lines += ["", "## Confirmed settings (chosen on validation, measured on test)", ""]
    groups = confirmed(store, spec)
    if not groups:
        lines.append(f"None yet: `study confirm {spec.name} --top 3 --seeds 1-3` trains the best settings again with "
                     f"seeds; their test error is the study's result.")
    else:
        lines += ["| trial | test err (mean ± std) | seeds finished | settings |", "|---:|---|---:|---|"]
        for trial, (errs, settings) in sorted(groups.items()):
            spread = f" ± {statistics.stdev(errs):.2f}" if len(errs) > 1 else ""
            mean = f"{statistics.mean(errs):.2f}{spread} %" if errs else "-"
            lines.append(f"| {trial} | {mean} | {len(errs)} | {settings} |")
    return "\n".join(lines) + "\n"


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def confirmed(store: RunStore, spec: StudySpec) -> dict[int, tuple[list[float], str]]:
    """trial -> (final test errors of its finished confirmation runs, its settings), from runs NAME-cT-sS."""
    out: dict[int, tuple[list[float], str]] = {}
    keys = [d.field for d in spec.dims]
    for info in store.list():
        cfg: RunConfig | None = info.config
        if cfg is None or cfg.study != spec.name or cfg.trial != -1:
            continue
        match = re.search(r"-c(\d+)-s\d+", info.id)
        errs = out.get(int(match.group(1)) if match else -1, ([], ""))[0]
        if info.state == "finished" and info.final_test_err is not None:
            errs.append(float(info.final_test_err))
        out[int(match.group(1)) if match else -1] = (errs, describe(cfg, keys))
    return out
