"""Results laid out by what a sweep varied: Table 6 generalised to any settings, and the effect of each.

``dimensions`` finds the settings that differ between seed groups; settings that always change together (a
variant such as optimizer=adam with lr=0.001) form one dimension. ``build`` puts the values of one dimension on
the rows and another on the columns (shortcut when it varies, else the last one); the others join the row label.
Each cell is the group's "best (mean ± std, n)" over seeds (``RunGroup.cell``). Where a dimension has two values,
``effects`` says what changing it did, per row of the other dimensions::

    lr /10 at epoch 2 vs 4: 7.12 vs 7.40, difference -0.28 ± 0.21 over 3 seeds

the difference being the mean over the seeds both groups have of (first - second), ± the sample standard
deviation of those per-seed differences (a reader can check it by hand from the CSV). The paper's depth x shortcut
grid keeps its own layout (table6.py).
"""
from __future__ import annotations

import csv
import io
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.results.groups import RunGroup, data_text, one_width_key, settings
from core.util.formatting import duration, model_name

PAPER_GRID = {"depth", "shortcut"}      # a sweep of only these is the paper's Table 6
SHARED_KEYS = ("depth", "shortcut", "width", "widths", "stem_width", "init", "optimizer", "lr", "momentum",
               "weight_decay", "batch_size", "schedule",
               "milestones", "epochs", "iterations", "warmup_iters", "augment")
TITLES = {"batch_size": "batch", "lr": "lr", "milestones": "lr decay", "weight_decay": "weight decay",
          "max_train_images": "training images", "max_test_images": "test images",
          "data": "data", "warmup_iters": "warm-up"}


@dataclass
class Dim:
    """Settings that vary together, and their value combinations in order."""

    keys: tuple[str, ...]
    values: list[tuple] = field(default_factory=list)

    @property
    def title(self) -> str:
        return ", ".join(TITLES.get(k, k.replace("_", " ")) for k in self.keys)


def _sort_key(value: Any):
    if isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
        return (2, value, "")           # stage widths, milestones: 4/8/16 before 16/32/64, not as text
    return (0, value, "") if isinstance(value, (int, float)) and not isinstance(value, bool) else (1, 0, str(value))


def dimensions(groups: Sequence[RunGroup]) -> list[Dim]:
    """The settings that differ between the groups (the data among them), paired ones merged into one dimension."""
    dicts = [settings(g) for g in groups]
    if not dicts:
        return []
    varied = [k for k in dicts[0] if any(d.get(k) != dicts[0].get(k) for d in dicts[1:])]
    if "milestones" in varied and "milestone_unit" in varied:
        varied.remove("milestone_unit")          # said with the milestones ('lr /10 at epoch 2')
    varied = one_width_key(varied, dicts)        # 'widths 30/60/90' or 'width 16', not both
    merged: list[list[str]] = []
    for key in varied:
        for keys in merged:
            joint = {tuple(_h(d[k]) for k in keys) + (_h(d[key]),) for d in dicts}
            if len(joint) == len({tuple(_h(d[k]) for k in keys) for d in dicts}) == len({_h(d[key]) for d in dicts}):
                keys.append(key)                 # one-to-one with this dimension: a paired variant
                break
        else:
            merged.append([key])
    dims = []
    for keys in merged:
        seen = list(dict.fromkeys(tuple(_h(d[k]) for k in keys) for d in dicts))
        seen.sort(key=lambda v: [_sort_key(x) for x in v])
        dims.append(Dim(tuple(keys), seen))
    return dims


def _h(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def is_paper_grid(dims: Sequence[Dim]) -> bool:
    """Only depth and shortcut vary (or nothing): the paper's Table 6 / Fig. 6 layout fits."""
    return all(set(d.keys) <= PAPER_GRID for d in dims)


def value_label(keys: Sequence[str], values: Sequence[Any], ref: dict) -> str:
    """How a value reads in a table or legend: 'lr /10 at epoch 2,4', 'batch 64', 'sgd, lr 0.1', 'width 16'."""
    parts = []
    for k, v in zip(keys, values):
        if k == "milestones":
            unit = ref.get("milestone_unit", "epoch")
            factor = ref.get("lr_factor", 0.1)
            by = f"/{1 / factor:g}" if factor and abs(1 / factor - round(1 / factor)) < 1e-9 else f"x{factor:g}"
            word = "epoch" if unit == "epoch" else "iteration"
            parts.append(f"lr {by} at {word}{'s' if len(v) > 1 else ''} {','.join(map(str, v))}" if v else "no decay")
        elif k in ("optimizer", "shortcut", "schedule", "data"):
            parts.append({"none": "plain"}.get(v, str(v)) if k == "shortcut" else str(v))
        elif k == "depth":
            parts.append(f"depth {v}")
        elif k == "widths":
            parts.append(f"widths {'/'.join(map(str, v))}")
        elif k in ("max_train_images", "max_test_images") and not v:     # 0: the whole set, not none of it
            parts.append(f"all {TITLES.get(k, k.replace('_', ' ').removeprefix('max '))}")
        else:
            text = f"{v:g}" if isinstance(v, float) else ("on" if v is True else "off" if v is False else str(v))
            parts.append(f"{TITLES.get(k, k.replace('_', ' '))} {text}")
    return ", ".join(parts)


@dataclass
class SweepTable:
    dims: list[Dim]
    row_dims: list[Dim]
    col_dim: Dim | None
    rows: list[tuple[str, list[RunGroup | None]]]      # label, one group (or None) per column
    columns: list[str]
    caption: str
    effects: list[str]
    costs: dict = field(default_factory=dict)           # id(group) -> core.results.cost.Cost, where cost varies


def _value_of(g: RunGroup, dim: Dim) -> tuple:
    d = settings(g)
    return tuple(_h(d[k]) for k in dim.keys)


def build(groups: Sequence[RunGroup]) -> SweepTable:
    """The table of a sweep's groups (see the module docstring)."""
    dims = dimensions(groups)
    ref = settings(groups[0]) if groups else {}
    col = next((d for d in dims if d.keys == ("shortcut",)), dims[-1] if len(dims) >= 2 else None)
    row_dims = [d for d in dims if d is not col]
    by_values = {tuple(_value_of(g, d) for d in dims): g for g in groups}
    columns = [value_label(col.keys, v, ref) for v in col.values] if col else ["test error (%)"]
    rows = []
    for combo in itertools.product(*(d.values for d in row_dims)):
        cells = []
        for cv in (col.values if col else [None]):
            full = dict(zip((id(d) for d in row_dims), combo))
            if col:
                full[id(col)] = cv
            cells.append(by_values.get(tuple(full[id(d)] for d in dims)))
        if any(cells):
            label = "; ".join(value_label(d.keys, v, ref) for d, v in zip(row_dims, combo)) or "all runs"
            rows.append((label, cells))
    return SweepTable(dims, row_dims, col, rows, columns, caption(groups, dims), effects(groups, dims))


def caption(groups: Sequence[RunGroup], dims: Sequence[Dim]) -> str:
    """What every cell shares, said once: the data and the settings that did not vary."""
    ref = settings(groups[0])
    varied = {k for d in dims for k in d.keys}
    data = data_text(groups[0].data) if "data" not in varied and groups[0].data else "the data given per row"
    doubling = list(ref.get("widths", ())) == [ref["width"], 2 * ref["width"], 4 * ref["width"]]
    skip = {"width" if not doubling or "widths" in varied else "widths", "width" if "widths" in varied else ""}
    skip |= {"stem_width"} if not ref.get("stem_width") else set()
    skip |= {"init"} if ref.get("init", "he-fan-out") == "he-fan-out" else set()     # the paper's: unsaid
    keys = [k for k in SHARED_KEYS if k not in varied and k not in skip
            and not (k == "milestones" and ref.get("schedule") != "multistep")
            and not (k == "epochs" and ref.get("iterations")) and not (k == "iterations" and not ref.get("iterations"))]
    shared = []
    arch = ref.get("arch", "resnet")
    if "depth" in keys and "shortcut" in keys and "arch" not in varied and ("width" in keys or arch != "wrn"):
        shared.append(model_name(ref["depth"], ref["shortcut"], arch, ref["width"]) + (
            "" if ref["shortcut"] in ("A", "none") else f" {ref['shortcut']}") + (
            " bottleneck" if arch == "preact-bottleneck" else "") + (
            f" dropout {ref['dropout']:g}" if ref.get("dropout") and "dropout" not in varied else ""))
        keys = [k for k in keys if k not in ("depth", "shortcut") and not (k in ("width", "widths") and arch == "wrn")]
    elif arch != "resnet" and "arch" not in varied:
        shared.append(f"arch {arch}")
    shared += [value_label((k,), (_h(ref[k]),), ref) for k in keys]
    return (f"Final test error (%) on {data}: best (mean ± std, n) over seeds, std the sample standard deviation; "
            f"runs of one seed and settings count once (repeats). Shared: {', '.join(shared)}.")


def effects(groups: Sequence[RunGroup], dims: Sequence[Dim]) -> list[str]:
    """One line per dimension with two values (per combination of the others): the effect of changing it."""
    ref = settings(groups[0]) if groups else {}
    lines = []
    for dim in (d for d in dims if len(d.values) == 2):
        others = [d for d in dims if d is not dim]
        for combo in itertools.product(*(d.values for d in others)):
            pick = {}
            for g in groups:
                if all(_value_of(g, d) == v for d, v in zip(others, combo)):
                    pick[_value_of(g, dim)] = g
            a, b = (pick.get(v) for v in dim.values)
            if a is None or b is None or not a.n or not b.n:
                continue
            where = "; ".join(value_label(d.keys, v, ref) for d, v in zip(others, combo))
            lines.append((f"with {where}: " if where else "") + effect_line(dim, a, b, ref))
    return lines


def effect_line(dim: Dim, a: RunGroup, b: RunGroup, ref: dict) -> str:
    """'lr /10 at epoch 2 vs 4: 7.12 vs 7.40, difference -0.28 ± 0.21 over 3 seeds' (a minus b, paired by seed)."""
    la, lb = (value_label(dim.keys, v, ref) for v in dim.values)
    prefix = _common_prefix(la, lb)
    head = f"{la} vs {lb[len(prefix):]}" if prefix else f"{la} vs {lb}"
    sa, sb = a.per_seed(), b.per_seed()
    common = sorted(set(sa) & set(sb))
    text = f"{head}: {a.mean:.2f} vs {b.mean:.2f}" + (" (partial †)" if a.partial or b.partial else "")
    if not common:
        return text + f", difference {a.mean - b.mean:+.2f} (no seed in common: not paired)"
    diffs = [statistics.fmean(sa[s]) - statistics.fmean(sb[s]) for s in common]
    if len(diffs) == 1:
        return text + f", difference {diffs[0]:+.2f} over 1 seed (no spread)"
    mean, sd, n = statistics.fmean(diffs), statistics.stdev(diffs), len(diffs)
    half = T95[min(n - 1, len(T95)) - 1] * sd / math.sqrt(n)      # Student's t, two-sided 95 %
    verdict = ("two seeds cannot show a difference" if n == 2 else
               "no clear difference" if mean - half <= 0 <= mean + half else "a difference beyond the seeds' spread")
    return text + (f", difference {mean:+.2f} ± {sd:.2f} over {n} seeds (95% interval {mean - half:+.2f} to "
                   f"{mean + half:+.2f}: {verdict})")


# Student's t for a two-sided 95 % interval, 1 to 10 degrees of freedom (then ~2.2 to 1.96: 2.228 is used)
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)


def _common_prefix(a: str, b: str) -> str:
    """'lr /10 at epochs ' of 'lr /10 at epochs 2,4' and 'lr /10 at epochs 4,5' (cut at a space)."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    cut = a.rfind(" ", 0, n + 1)
    return a[:cut + 1] if cut > 0 else ""


# -- writers -----------------------------------------------------------------------------------------------------------
def _head(table: SweepTable) -> list[str]:
    return [" / ".join(d.title for d in table.row_dims) or "runs", *table.columns]


def _cells(table: SweepTable) -> list[list[str]]:
    return [[label] + ["-" if g is None else g.cell() + ("†" if g.partial else "") for g in cells]
            for label, cells in table.rows]


def to_markdown(table: SweepTable) -> str:
    head = _head(table)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in _cells(table)]
    text = "\n".join(lines) + "\n\n" + table.caption + "\n"
    partial = sum(g.partial for _, cells in table.rows for g in cells if g is not None)
    if partial:
        text += (f"\n† partial: {partial} run{'s' if partial != 1 else ''} of this table "
                 f"{'have' if partial != 1 else 'has'} not finished every epoch (its latest numbers count)\n")
    if table.effects:
        text += "\n" + "\n".join(f"- {e}" for e in table.effects) + "\n"
    if table.costs:
        text += "\n" + cost_markdown(table.costs)
    return text


def cost_markdown(costs: dict) -> str:
    """What each group cost (``costs``: core.results.cost.costs): its net's parameters and its mean time per run,
    beside its final error."""
    lines = ["| group | parameters | time per run | final test error (%) |", "|---|---:|---:|---:|"]
    for c in costs.values():
        spread = f" ({c.lo:.2f}-{c.hi:.2f}, n={c.n})" if c.n > 1 else ""
        lines.append(f"| {c.label.replace('|', chr(92) + '|')} | {c.parameters:,} | "
                     f"{duration(c.seconds) if c.seconds is not None else '-'} | {c.mean:.2f}{spread} |")
    return "\n".join(lines) + ("\n\nTime per run: training and evaluation, pauses excluded (mean over the seeds); "
                               "parameters counted on the net as built.\n")


def to_latex(table: SweepTable) -> str:
    from core.results.table6 import tex_escape

    head = _head(table)
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule",
             " & ".join(tex_escape(h) for h in head) + r" \\", r"\midrule"]
    lines += [" & ".join(tex_escape(c) for c in row) + r" \\" for row in _cells(table)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + tex_escape(table.caption) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: SweepTable) -> str:
    """One line per group: the value of each varied setting, then n (seeds), runs, best, mean, std, seeds."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    keys = [k for d in table.dims for k in d.keys]
    cost = ["parameters", "seconds_per_run"] if table.costs else []
    w.writerow([*keys, "n", "runs", "best", "mean", "std", "partial", "seeds", *cost])
    for _, cells in table.rows:
        for g in (g for g in cells if g is not None):
            d = settings(g)
            c = table.costs.get(id(g))
            extra = ([c.parameters, _f(c.seconds)] if c else ["", ""]) if cost else []
            w.writerow([*(",".join(map(str, d[k])) if isinstance(d[k], list) else d[k] for k in keys), g.n, g.n_runs,
                        _f(g.best), _f(g.mean), _f(g.std), g.partial, " ".join(map(str, g.seeds)), *extra])
    return buf.getvalue()


def _f(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"
