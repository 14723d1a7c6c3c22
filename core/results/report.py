"""``write_report``: one folder with the results of runs: tables, figures and report.md.

The runs are split by sweep (``sections``: each sweep gets its own table and figure; runs of no sweep together).
A section where only depth and shortcut vary keeps the paper's layout; one with pre-activation or wide nets (where
the architecture varies, or only depth, shortcut, width and dropout do) gets the depth x architecture table
(core/results/arch_table.py); any other gets the layout by what varied (core/results/sweep.py). Files (those of
the formats asked for; prefixed ``NAME-`` when several sweeps share a report)::

    table6.md  table6.tex  table6.csv      the paper's Table 6 layout (see table6.py)
    archs.md   archs.tex   archs.csv       depth x architecture beside the follow-up papers (arch_table.py)
    fig6.png   fig6.svg    fig6.pdf        error curves as Fig. 6 (see figures.py)
    table.md   table.tex   table.csv       a sweep's table: rows and columns the values it varied, effect lines
    curves.png curves.svg  curves.pdf      a sweep's curves, one colour per value, the learning rate below
    cost.png   cost.svg    cost.pdf        error against time and parameters, where width, depth, batch or arch vary
    fig7.png   fig7.svg    fig7.pdf        layer responses, when the runs' checkpoints and test images are here
    report.md                              the tables and figures embedded, each run's settings and environment

The whole folder can be pasted into a write-up. Bad input raises ReportError before anything is written.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.results import arch_table, cost, figures, sweep
from core.results.groups import (
    DATASET_TITLES,
    RunGroup,
    group_runs,
    is_partial,
    pick_x,
    select_runs,
    settings,
    variant_labels,
)
from core.results.publish import staged
from core.results.sweep import dimensions, is_paper_grid
from core.results.table6 import build_table, to_csv, to_latex, to_markdown
from core.store.runs import ACTIVE, Run, RunInfo
from core.store.sweeps import incomplete_notes
from core.util.errors import MissingDependency, ReportError
from core.util.formatting import duration, pct, some_ids

TABLE_FORMATS = ("md", "tex", "csv")
FORMATS = TABLE_FORMATS + figures.FIGURE_FORMATS
ENV_KEYS = ("torch", "python", "cuda", "cudnn", "device", "device_name", "host", "git_commit", "reslab")


@dataclass
class Report:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    groups: list[RunGroup] = field(default_factory=list)


def default_out_dir(runs_root: Path) -> Path:
    """reports/report-YYYYmmdd-HHMMSS beside the runs folder (not inside it: every folder there is a run)."""
    base = Path(runs_root).resolve().parent / "reports" / time.strftime("report-%Y%m%d-%H%M%S")
    path, i = base, 1
    while path.exists():
        i += 1
        path = base.with_name(f"{base.name}-{i}")
    return path


def parse_formats(text: str | Sequence[str]) -> list[str]:
    """'md,png' -> ['md', 'png']; 'all' -> every format. Raises ReportError naming the allowed ones."""
    parts = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    if not parts:
        raise ReportError(f"empty; give a comma-separated list of {', '.join(FORMATS)}, or all")
    if parts == ["all"]:
        return list(FORMATS)
    bad = [p for p in parts if p not in FORMATS]
    if bad:
        raise ReportError(f"unknown format {', '.join(bad)}; allowed: {', '.join(FORMATS)} (comma separated) or all")
    return list(dict.fromkeys(parts))


@dataclass
class Section:
    """Runs that share one table and figure: one data set's runs of one sweep (or of no sweep)."""

    prefix: str                 # of its files ('' when the report has one section)
    heading: str                # its report.md heading ('' when the report has one section of no sweep)
    runs: list[RunInfo]


def sections(usable: Sequence[RunInfo]) -> list[Section]:
    """The runs split by data set, then by sweep (sweep_name; runs of no sweep together, last): errors on different
    data sets are not comparable, and unrelated sweeps get their own table and figure instead of sharing one
    unreadable one."""
    by: dict[tuple[str, str], list[RunInfo]] = {}
    for info in usable:
        by.setdefault((info.config.dataset, info.config.sweep_name), []).append(info)
    keys = sorted(by, key=lambda k: (k[0], k[1] == "", k[1]))
    datasets = list(dict.fromkeys(k[0] for k in keys))
    out = []
    for dataset, name in keys:
        several = sum(1 for k in keys if k[0] == dataset) > 1
        title = DATASET_TITLES.get(dataset, dataset)
        heading = (f"Sweep {name}" if name else "Runs of no sweep") if several or name else ""
        prefix = f"{name or 'other'}-" if several else ""
        if len(datasets) > 1:
            heading = f"{title[:1].upper()}{title[1:]}" + (f": {heading[:1].lower()}{heading[1:]}" if heading else "")
            prefix = f"{dataset}-{prefix}"
        out.append(Section(prefix, heading, by[(dataset, name)]))
    return out


def write_report(infos: Sequence[RunInfo], out_dir: Path, *, named: bool = True, formats: Sequence[str] = FORMATS,
                 layer_responses: bool = True, device: str = "auto", data_dir: str | None = None,
                 tensorboard: bool = False, x: str = "auto") -> Report:
    """Write the report of these runs into ``out_dir`` (created). See the module docstring."""
    usable, notes = select_runs(infos, named=named)
    notes = incomplete_notes(infos) + notes       # a sweep a kill or a stop left unfinished
    figs = [f for f in formats if f in figures.FIGURE_FORMATS]
    if figs:
        figures.matplotlib_figure()              # a missing package is reported before anything is written
    if tensorboard:
        from core.train.tensorboard import summary_writer

        summary_writer()
    out_dir = Path(out_dir)
    with staged(out_dir) as staging:     # written whole into a hidden folder, then moved into place (publish.py)
        report = _write_all(usable, staging, notes, formats, figs, tensorboard,
                            dict(layer_responses=layer_responses, device=device, data_dir=data_dir, x=x))
    report.out_dir = out_dir
    report.files = [out_dir / p.relative_to(staging) for p in report.files]
    return report


def _write_all(usable: list[RunInfo], out_dir: Path, notes: list[str], formats: Sequence[str], figs: list[str],
               tensorboard: bool, opts: dict) -> Report:
    """Every section's tables and figures, then report.md, into ``out_dir`` (the hidden folder ``staged`` gives)."""
    report = Report(out_dir, notes=list(notes))
    body: list[str] = []
    for part in sections(usable):
        groups = group_runs(part.runs)
        report.groups += groups
        prefix, heading = part.prefix, part.heading
        write = _write_archs if arch_table.fits(groups) else \
            _write_paper if is_paper_grid(dimensions(groups)) else _write_sweep
        body += write(groups, out_dir, prefix, heading, formats, figs, report, opts)
    if tensorboard:
        report.notes += export_tensorboard(usable)
    md = out_dir / "report.md"
    md.write_text(report_markdown(usable, report.groups, body, report.notes))
    report.files.append(md)
    return report


def _write_table(table, writers: dict, stem: Path, formats: Sequence[str], report: Report) -> None:
    """``stem``.md/.tex/.csv of a table, in the formats asked for, each through its writer; listed in the report."""
    for fmt in (f for f in formats if f in TABLE_FORMATS):
        path = stem.with_name(f"{stem.name}.{fmt}")
        path.write_text(writers[fmt](table))
        report.files.append(path)


def _write_paper(groups: list[RunGroup], out_dir: Path, prefix: str, heading: str, formats: Sequence[str],
                 figs: Sequence[str], report: Report, opts: dict) -> list[str]:
    """Table 6, Fig. 6 and Fig. 7 of a depth x shortcut grid; the report.md lines that show them."""
    table = build_table(groups)
    _write_table(table, {"md": to_markdown, "tex": to_latex, "csv": to_csv}, out_dir / f"{prefix}table6", formats,
                 report)
    fig6_files: list[Path] = []
    if figs:
        fig6_files = figures.save(figures.fig6(groups), out_dir, f"{prefix}fig6", figs)
    report.files += fig6_files
    sub = "###" if heading else "##"
    lines = ([f"## {heading}", ""] if heading else []) + [f"{sub} Test error (Table 6 layout)", "",
                                                           to_markdown(table).rstrip(), ""]
    if fig6_files:
        lines += [f"{sub} Training curves (Fig. 6 layout)", "",
                  f"![Training and test error over iterations]({_embed(fig6_files)})", "",
                  "Dashed: training error, bold: test error; shaded: min-max over the seeds of a group.", ""]
    variants = variant_labels(groups)
    costs = _costs_of(groups, [g.name + (f" ({variants[id(g)]})" if variants[id(g)] else "") for g in groups])
    lines += _write_cost(costs, "depth and shortcut", out_dir, prefix, figs, report, table=True)
    return lines + _write_fig7(groups, out_dir, prefix, sub, figs, report, opts)


def _write_archs(groups: list[RunGroup], out_dir: Path, prefix: str, heading: str, formats: Sequence[str],
                 figs: Sequence[str], report: Report, opts: dict) -> list[str]:
    """The depth x architecture table beside the papers, the groups' curves and Fig. 7 where it applies."""
    table = arch_table.build_arch_table(groups)
    _write_table(table, {"md": arch_table.to_markdown, "tex": arch_table.to_latex, "csv": arch_table.to_csv},
                 out_dir / f"{prefix}archs", formats, report)
    files: list[Path] = []
    if figs:
        fig = figures.fig_sweep(groups, [g.name for g in groups], pick_x(groups, opts["x"]),
                                title="by architecture: test error (bold), training error (dashed)")
        files = figures.save(fig, out_dir, f"{prefix}curves", figs)
        report.files += files
    sub = "###" if heading else "##"
    lines = ([f"## {heading}", ""] if heading else []) + [f"{sub} Test error by depth and architecture", "",
                                                           arch_table.to_markdown(table).rstrip(), ""]
    if files:
        lines += [f"![Error and learning rate by architecture]({_embed(files)})", "",
                  "Bold: test error, dashed: training error (shaded: min-max over seeds); below: the learning rate.",
                  ""]
    costs = _costs_of(groups, [arch_table.column_title(g) + f", depth {g.depth}" for g in groups])
    lines += _write_cost(costs, "architecture", out_dir, prefix, figs, report, table=True)
    return lines + _write_fig7(groups, out_dir, prefix, sub, figs, report, opts)


def _write_fig7(groups: list[RunGroup], out_dir: Path, prefix: str, sub: str, figs: Sequence[str], report: Report,
                opts: dict) -> list[str]:
    """Fig. 7 (layer responses) of these groups when asked for and their checkpoints allow; its report.md lines."""
    curves = response_curves(groups, report.notes, opts["device"], opts["data_dir"]) \
        if figs and opts["layer_responses"] else []
    if not curves:
        return []
    files = figures.save(figures.fig7(curves), out_dir, f"{prefix}fig7", figs)
    report.files += files
    return [f"{sub} Layer responses (Fig. 7 layout)", "", f"![Std of layer responses]({_embed(files)})", "",
            "Standard deviation of each 3x3 layer's output after batch norm, before the addition and the "
            "ReLU, over the test set (from each run's checkpoint.pt; mean over the seeds of a group).", ""]


def _write_sweep(groups: list[RunGroup], out_dir: Path, prefix: str, heading: str, formats: Sequence[str],
                 figs: Sequence[str], report: Report, opts: dict) -> list[str]:
    """The table by what varied (core/results/sweep.py), its effect lines and its curves with the lr below."""
    table = sweep.build(groups)
    ref = settings(groups[0])
    groups = sorted(groups, key=lambda g: [d.values.index(sweep._value_of(g, d)) for d in table.dims])
    labels = ["; ".join(sweep.value_label(d.keys, sweep._value_of(g, d), ref) for d in table.dims) or g.name
              for g in groups]
    if cost.varies_cost([k for d in table.dims for k in d.keys]):
        table.costs = cost.costs(groups, labels)
    _write_table(table, {"md": sweep.to_markdown, "tex": sweep.to_latex, "csv": sweep.to_csv},
                 out_dir / f"{prefix}table", formats, report)
    x = pick_x(groups, opts["x"])
    varied = ", ".join(d.title for d in table.dims) or "nothing"
    files: list[Path] = []
    if figs:
        fig = figures.fig_sweep(groups, labels, x, title=f"by {varied}: test error (bold), training error (dashed)")
        files = figures.save(fig, out_dir, f"{prefix}curves", figs)
        report.files += files
    cost_lines = _write_cost(table.costs, varied, out_dir, prefix, figs, report)
    lines = ([f"## {heading}", ""] if heading else []) + [f"{'###' if heading else '##'} Test error by {varied}",
                                                           "", sweep.to_markdown(table).rstrip(), ""]
    if files:
        lines += [f"![Error and learning rate over {figures.X_LABELS[x]}]({_embed(files)})", "",
                  f"Bold: test error, dashed: training error (shaded: min-max over seeds); below: the learning rate. "
                  f"{table.caption.partition(': ')[0].replace('Final test error (%) on', 'Data:')}.", ""]
    lines += cost_lines
    return lines + _write_fig7(groups, out_dir, prefix, "###" if heading else "##", figs, report, opts)


def _costs_of(groups: list[RunGroup], labels: list[str]) -> dict:
    """The groups' cost points (core/results/cost.py) where they differ in what a net costs, else none."""
    dicts = [settings(g) for g in groups]
    varied = [k for k in (dicts[0] if dicts else {}) if any(d[k] != dicts[0][k] for d in dicts[1:])]
    return cost.costs(groups, labels) if cost.varies_cost(varied) else {}


def _write_cost(costs: dict, varied: str, out_dir: Path, prefix: str, figs: Sequence[str], report: Report,
                table: bool = False) -> list[str]:
    """cost.png (error against time and parameters) of these points, and its report.md lines (with the cost table
    when ``table``: the sweep table carries its own)."""
    files = figures.save(cost.fig_cost(list(costs.values()), title=f"by {varied}: error against cost"), out_dir,
                         f"{prefix}cost", figs) if figs and len(costs) > 1 else []
    report.files += files
    lines = [sweep.cost_markdown(costs), ""] if table and costs else []
    if files:
        lines += [f"![Final test error against training time and parameters]({_embed(files)})", "",
                  "Final test error (mean over seeds; whiskers: lowest to highest seed) against training time per run "
                  "and against parameters, one point per group; dashed: the Pareto front (no other group is both "
                  "cheaper and better).", ""]
    return lines


def _embed(paths: list[Path]) -> str:
    for ext in ("png", "svg"):
        for p in paths:
            if p.suffix == f".{ext}":
                return p.name
    return ""


def response_curves(groups: Sequence[RunGroup], notes: list[str], device: str = "auto",
                    data_dir: str | None = None) -> list[figures.ResponseCurve]:
    """Each group's layer-response stds (mean over its runs), computed once per checkpoint; failures become notes."""
    from core.results.responses import layer_responses

    curves = []
    variants = variant_labels(groups)
    left_out: dict[str, list[str]] = {}      # why -> the runs left out for it (one note per reason)
    for g in groups:
        stds = []
        for info in g.runs:
            try:
                data = layer_responses(Run(info.path), device=device, data_dir=data_dir)
            except MissingDependency:
                raise
            except ReportError as exc:
                why = str(exc).removeprefix(f"run {info.id}: ").removeprefix(f"run {info.id} ")
                left_out.setdefault(why, []).append(info.id)
                continue
            if not all(math.isfinite(layer["std"]) for layer in data["layers"]):
                left_out.setdefault("its checkpoint's weights are not finite (NaN or inf responses)", []) \
                    .append(info.id)
                continue
            stds.append([layer["std"] for layer in data["layers"]])
        if stds:
            mean = [statistics.fmean(v) for v in zip(*stds)]
            curves.append(figures.ResponseCurve(g.name, g.kind, g.depth, mean, len(stds), variants[id(g)]))
    for why, ids in left_out.items():
        notes.append(f"Fig. 7 leaves out {some_ids(ids, 6)}: {why}")
    return curves


def export_tensorboard(infos: Sequence[RunInfo]) -> list[str]:
    """Write each run's tensorboard/ from its .jsonl files; a run that writes its own events live is left alone."""
    from core.train.tensorboard import export_run

    notes = []
    for info in infos:
        if info.state in ACTIVE and info.config is not None and getattr(info.config, "tensorboard", False):
            notes.append(f"TensorBoard: {info.id} is {info.state} and writes its own event files; left as is")
            continue
        path = export_run(Run(info.path))
        notes.append(f"TensorBoard: wrote {path}")
    return notes


# -- report.md ---------------------------------------------------------------------------------------------------------
def report_markdown(infos: Sequence[RunInfo], groups: Sequence[RunGroup], body: Sequence[str],
                    notes: Sequence[str]) -> str:
    n_partial = sum(1 for i in infos if is_partial(i))
    lines = ["# Results", "",
             f"{len(infos)} run{'s' if len(infos) != 1 else ''} in {len(groups)} group"
             f"{'s' if len(groups) != 1 else ''} of seeds, written {time.strftime('%Y-%m-%d %H:%M')}"
             + (f"; {n_partial} of them partial (not finished)." if n_partial else "."), "", *body]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Appendix: settings and environment", ""] + _settings(infos) + [""] + _environment(infos)
    return "\n".join(lines).rstrip() + "\n"


def _cell(value) -> str:
    text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return (text or "''").replace("|", "\\|")


def _settings(infos: Sequence[RunInfo]) -> list[str]:
    dicts = [i.config.to_dict() for i in infos]
    keys = list(dicts[0])
    own_columns = ("depth", "shortcut", "seed", "name", "epochs")    # epochs: in the done/total column
    differ = [k for k in keys if k not in own_columns and any(d[k] != dicts[0][k] for d in dicts[1:])]
    shared = [k for k in keys if k not in differ and k not in own_columns and k not in ("data_dir", "download")]
    lines = ["Settings shared by every run: " + ", ".join(f"`{k}={_cell(dicts[0][k])}`" for k in shared) + ".", ""]
    head = ["run", "depth", "shortcut", "seed", *differ, "state", "epochs", "final err %", "best err %", "time"]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for info, d in zip(infos, dicts):
        cells = [info.id, d["depth"], d["shortcut"], d["seed"], *(d[k] for k in differ), info.state,
                 f"{info.epochs_done}/{info.total_epochs or '?'}", pct(info.final_test_err, unit=False),
                 pct(info.best_test_err, unit=False), duration(info.duration_s)]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _environment(infos: Sequence[RunInfo]) -> list[str]:
    envs = [{k: (i.status.get("env") or {}).get(k) for k in ENV_KEYS} for i in infos]
    keys = [k for k in ENV_KEYS if any(e.get(k) is not None for e in envs)]
    if not keys:
        return ["No environment recorded (status.json has no `env`)."]
    same = [k for k in keys if all(e.get(k) == envs[0][k] for e in envs) and envs[0][k] is not None]
    keys = [k for k in keys if k not in same]
    lines = ["Environment of every run: " + ", ".join(f"{k} `{envs[0][k]}`" for k in same) + ".", ""] if same else []
    if not keys:
        return lines[:1]
    lines += ["| run | " + " | ".join(keys) + " |", "|" + "|".join("---" for _ in range(len(keys) + 1)) + "|"]
    for info, e in zip(infos, envs):
        lines.append("| " + " | ".join(_cell(v if v is not None else "-") for v in [info.id, *(e[k] for k in keys)])
                     + " |")
    return lines
