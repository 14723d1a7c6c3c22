"""Depth x architecture: the follow-up papers' layout, with their numbers beside ours.

One row per depth, one column per architecture (ResNet A/B and plain as in Table 6, PreAct, PreAct bottleneck,
WRN k=10, ...: ``column_title``). Each cell is "best (mean ± std, n)" over the seeds of a group (``RunGroup.cell``);
a column whose runs have a paper's number (He et al. 2016 Table 6 for ResNet A, He et al. 2016b for PreAct,
Zagoruyko & Komodakis 2016 for WRN: ``RunConfig.paper_error``) gets a "paper" column right after it. Settings that
come with a column (each architecture's recipe: schedule, batch size...) are said once under the table; settings
that vary within a column give a row each, labelled with them. Table 6 (table6.py) stays the layout of the paper's
depth x shortcut grid of ResNets; this one is for runs of the other architectures.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.results.groups import KIND_TITLES, KINDS, RunGroup, data_text, settings
from core.results.table6 import PARTIAL_MARK, _f, cell_text, data_title, tex_escape
from core.spec.archs import ARCHS, WRN_BASE, doubling, widths_text
from core.util.formatting import pct

ARCH_GRID = {"depth", "shortcut", "arch", "width", "widths", "stem_width", "dropout"}   # what columns and rows say
_BASE = {"preact": "PreAct", "preact-bottleneck": "PreAct bottleneck"}
SOURCES = {"resnet": "He et al. 2016 (Table 6, option A)", "preact": "He et al. 2016b",
           "preact-bottleneck": "He et al. 2016b", "wrn": "Zagoruyko & Komodakis 2016"}


def column_title(g: RunGroup) -> str:
    """'ResNet A', 'plain', 'PreAct', 'PreAct bottleneck A', 'WRN k=10', 'WRN k=10 dropout 0.3'. The follow-ups'
    projection shortcut (B, as both papers use) goes unsaid; any other is named, as is a width other than 16."""
    c = g.config
    paper = c.widths == doubling(16) and c.stem_width in (0, 16)
    wide = "" if paper else f" {widths_text(c.widths, c.stem_width)}"       # ' w64', ' 30/60/90 stem 64'
    if c.arch == "resnet":
        return KIND_TITLES.get(c.shortcut, c.shortcut) + wide
    if c.arch == "wrn":
        title = f"WRN k={c.width // WRN_BASE}" if c.width % WRN_BASE == 0 else f"WRN w{c.width}"
    else:
        title = _BASE.get(c.arch, c.arch) + wide
    title += {"B": "", "none": " plain"}.get(c.shortcut, f" {c.shortcut}")
    return title + (f" dropout {c.dropout:g}" if c.dropout else "")


def _column_order(g: RunGroup) -> tuple:
    c = g.config
    arch = ARCHS.index(c.arch) if c.arch in ARCHS else len(ARCHS)
    return arch, KINDS.index(c.shortcut) if c.shortcut in KINDS else len(KINDS), c.widths, c.stem_width, c.dropout


@dataclass
class Column:
    title: str
    arch: str
    paper: bool = False                              # some cell has a paper's number: a paper column follows


@dataclass
class ArchRow:
    depth: int
    variant: str                                     # '' or 'lr=0.05': what varies within a column
    cells: dict[str, RunGroup] = field(default_factory=dict)    # column title -> group

    @property
    def label(self) -> str:
        return f"{self.depth}" + (f" ({self.variant})" if self.variant else "")

    def paper(self, title: str) -> float | None:
        g = self.cells.get(title)
        return g.config.paper_error if g is not None else None


@dataclass
class ArchTable:
    dataset: str
    columns: list[Column]
    rows: list[ArchRow]
    recipes: dict[str, str] = field(default_factory=dict)   # column title -> the settings that come with it
    data: str = ""

    @property
    def partial_runs(self) -> int:
        return sum(g.partial for r in self.rows for g in r.cells.values())

    def header(self) -> list[str]:
        out = ["depth"]
        for c in self.columns:
            out += [c.title] + ([f"{c.title} paper"] if c.paper else [])
        return out

    def text_rows(self, mark: str = PARTIAL_MARK) -> list[list[str]]:
        out = []
        for r in self.rows:
            cells = [r.label]
            for c in self.columns:
                g = r.cells.get(c.title)
                cells.append(cell_text(g, mark))
                if c.paper:
                    cells.append(pct(r.paper(c.title), unit=False))
            out.append(cells)
        return out

    def caption(self) -> str:
        what = data_title(self.data, self.dataset)
        text = (f"Final test error (%) on {what} by depth and architecture: best (mean ± std, n) over seeds; std is "
                f"the sample standard deviation.")
        sources = list(dict.fromkeys(SOURCES[c.arch] for c in self.columns if c.paper and c.arch in SOURCES))
        if sources:
            text += " Paper columns: " + "; ".join(sources) + " (CIFAR-10, whole training set)."
        return text

    def notes(self) -> list[str]:
        out = [f"{title}: {text}" for title, text in self.recipes.items() if text]
        n = self.partial_runs
        if n:
            out.append(f"{PARTIAL_MARK} partial: {n} run{'s' if n != 1 else ''} of this table "
                       f"{'have' if n != 1 else 'has'} not finished every epoch")
        return out


def _value(v) -> str:
    """A setting's value in a row label or note: '4,6' for a list, 'none' for an empty one (no lr drops)."""
    return (",".join(map(str, v)) or "none") if isinstance(v, (list, tuple)) else str(v)


def build_arch_table(groups: Sequence[RunGroup]) -> ArchTable:
    """The depth x architecture table of these groups (all of one data set: see ``select_runs``)."""
    groups = sorted(groups, key=lambda g: (_column_order(g), g.depth))
    dataset = groups[0].config.dataset if groups else "cifar10"
    titles = {id(g): column_title(g) for g in groups}
    sets = {id(g): settings(g) for g in groups}
    keys = [k for k in (sets[id(groups[0])] if groups else {}) if k not in ARCH_GRID]
    by_col: dict[str, list[RunGroup]] = {}
    for g in groups:
        by_col.setdefault(titles[id(g)], []).append(g)
    within = [k for k in keys if any(len({_value(sets[id(g)][k]) for g in gs}) > 1 for gs in by_col.values())]
    across = [k for k in keys if k not in within and len({_value(sets[id(g)][k]) for g in groups}) > 1]
    rows: dict[tuple[int, str], ArchRow] = {}
    columns: dict[str, Column] = {}
    for g in groups:
        title = titles[id(g)]
        variant = ", ".join(f"{k}={_value(sets[id(g)][k])}" for k in within)
        rows.setdefault((g.depth, variant), ArchRow(g.depth, variant)).cells[title] = g
        col = columns.setdefault(title, Column(title, g.config.arch))
        col.paper = col.paper or g.config.paper_error is not None
    recipes = {t: ", ".join(f"{k}={_value(sets[id(gs[0])][k])}" for k in across) for t, gs in by_col.items()}
    datas = {data_text(g.data) for g in groups if g.data}
    data = datas.pop() if len(datas) == 1 else ("the data given per row" if datas else "")
    return ArchTable(dataset, list(columns.values()), [rows[k] for k in sorted(rows)], recipes, data)


def fits(groups: Sequence[RunGroup]) -> bool:
    """These groups take the depth x architecture layout: some run is not the paper's ResNet, and either the
    architecture varies or only what the columns and rows say does (depth, shortcut, arch, width, dropout)."""
    if not groups or all(g.config.arch == "resnet" for g in groups):
        return False
    if len({g.config.arch for g in groups}) > 1:
        return True
    first = settings(groups[0])
    return all(all(v == first.get(k) for k, v in settings(g).items() if k not in ARCH_GRID) for g in groups)


# -- writers -----------------------------------------------------------------------------------------------------------
def to_markdown(table: ArchTable) -> str:
    head = table.header()
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for cells in table.text_rows():
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    text = "\n".join(lines) + "\n\n" + table.caption() + "\n"
    notes = table.notes()
    return text + ("\n" + "\n".join(f"- {n}" for n in notes) + "\n" if notes else "")


def to_latex(table: ArchTable) -> str:
    """A booktabs table (needs \\usepackage{booktabs} in the preamble)."""
    head = table.header()
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule",
             " & ".join(tex_escape(h) for h in head) + r" \\", r"\midrule"]
    lines += [" & ".join(tex_escape(c) for c in cells) + r" \\" for cells in table.text_rows()]
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = " ".join([table.caption()] + [n + "." for n in table.notes()])
    lines += [r"\caption{" + tex_escape(caption) + "}", r"\label{tab:resnet-archs}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: ArchTable) -> str:
    """One line per cell (depth, variant, column): n, best, mean, std, partial runs, seeds, the paper's number."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["depth", "variant", "architecture", "arch", "n", "best", "mean", "std", "partial", "seeds", "paper"])
    for r in table.rows:
        for c in table.columns:
            g = r.cells.get(c.title)
            if g is not None:
                w.writerow([r.depth, r.variant, c.title, g.config.arch, g.n, _f(g.best), _f(g.mean), _f(g.std),
                            g.partial, " ".join(map(str, g.seeds)), _f(r.paper(c.title))])
    return buf.getvalue()
