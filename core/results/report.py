"""``write_report``: one folder with the Table 6-style table, the Fig. 6 and Fig. 7-style figures and report.md.

Files (those of the formats asked for)::

    table6.md  table6.tex  table6.csv      the table (see table6.py)
    fig6.png   fig6.svg    fig6.pdf        error curves (see figures.py)
    fig7.png   fig7.svg    fig7.pdf        layer responses, when the runs' checkpoints and test images are here
    report.md                              the table and figures embedded, each run's settings and environment

The whole folder can be pasted into a write-up. Bad input raises ReportError before anything is written.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from core.results import figures
from core.results.groups import (
    MissingDependency,
    ReportError,
    RunGroup,
    group_runs,
    is_partial,
    select_runs,
    variant_labels,
)
from core.results.table6 import build_table, to_csv, to_latex, to_markdown
from core.store.runs import ACTIVE, Run, RunInfo
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
    if parts == ["all"] or not parts:
        return list(FORMATS)
    bad = [p for p in parts if p not in FORMATS]
    if bad:
        raise ReportError(f"unknown format {', '.join(bad)}; allowed: {', '.join(FORMATS)} (comma separated) or all")
    return list(dict.fromkeys(parts))


def write_report(infos: Sequence[RunInfo], out_dir: Path, *, named: bool = True, formats: Sequence[str] = FORMATS,
                 layer_responses: bool = True, device: str = "auto", data_dir: str | None = None,
                 tensorboard: bool = False) -> Report:
    """Write the report of these runs into ``out_dir`` (created). See the module docstring."""
    usable, notes = select_runs(infos, named=named)
    groups = group_runs(usable)
    figs = [f for f in formats if f in figures.FIGURE_FORMATS]
    if figs:
        figures.matplotlib_figure()              # a missing package is reported before anything is written
    if tensorboard:
        from core.train.tensorboard import summary_writer

        summary_writer()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(out_dir, notes=list(notes), groups=groups)
    table = build_table(groups)
    writers = {"md": to_markdown, "tex": to_latex, "csv": to_csv}
    for fmt in (f for f in formats if f in TABLE_FORMATS):
        path = out_dir / f"table6.{fmt}"
        path.write_text(writers[fmt](table))
        report.files.append(path)
    fig6_files: list[Path] = []
    fig7_files: list[Path] = []
    if figs:
        fig6_files = figures.save(figures.fig6(groups), out_dir, "fig6", figs)
        curves = response_curves(groups, report.notes, device, data_dir) if layer_responses else []
        if curves:
            fig7_files = figures.save(figures.fig7(curves), out_dir, "fig7", figs)
    report.files += fig6_files + fig7_files
    if tensorboard:
        report.notes += export_tensorboard(usable)
    md = out_dir / "report.md"
    md.write_text(report_markdown(usable, groups, to_markdown(table), _embed(fig6_files), _embed(fig7_files),
                                  report.notes))
    report.files.append(md)
    return report


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
def report_markdown(infos: Sequence[RunInfo], groups: Sequence[RunGroup], table_md: str, fig6: str, fig7: str,
                    notes: Sequence[str]) -> str:
    n_partial = sum(1 for i in infos if is_partial(i))
    lines = ["# Results", "",
             f"{len(infos)} run{'s' if len(infos) != 1 else ''} in {len(groups)} group"
             f"{'s' if len(groups) != 1 else ''} of seeds, written {time.strftime('%Y-%m-%d %H:%M')}"
             + (f"; {n_partial} of them partial (not finished)." if n_partial else "."), "",
             "## Test error (Table 6 layout)", "", table_md.rstrip(), ""]
    if fig6:
        lines += ["## Training curves (Fig. 6 layout)", "", f"![Training and test error over iterations]({fig6})", "",
                  "Dashed: training error, bold: test error; shaded: min-max over the seeds of a group.", ""]
    if fig7:
        lines += ["## Layer responses (Fig. 7 layout)", "", f"![Std of layer responses]({fig7})", "",
                  "Standard deviation of each 3x3 layer's output after batch norm, before the addition and the "
                  "ReLU, over the test set (from each run's checkpoint.pt; mean over the seeds of a group).", ""]
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
