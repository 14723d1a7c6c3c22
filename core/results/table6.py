"""The paper's Table 6 layout from seed groups: one row per depth, a column per network kind, references beside.

Each cell is "best (mean ± std, n)" over the seeds of one group (``RunGroup.cell``); the paper's errors
(``PAPER_ERRORS``, He et al. 2016 Table 6, option A) and the lab report's (``LAB_REPORT_ERRORS``) stand beside
ours for CIFAR-10. Groups that differ in more than depth and shortcut get a row each, labelled with what differs.
A cell holding unfinished runs is marked † (partial). Written as Markdown, LaTeX (booktabs) and CSV.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from core.results.groups import KIND_TITLES, KINDS, RunGroup, data_text, variant_labels
from core.spec.config import LAB_REPORT_ERRORS, PAPER_ERRORS
from core.util.formatting import pct

PARTIAL_MARK = "†"
SHORT_MARK = "‡"
PAPER_ITERATIONS = 64000     # He et al. 2016, sec. 4.2: 64k iterations at batch 128 (164 epochs of 50k images)


def iterations(group: RunGroup) -> int:
    """How long the group's runs were planned to train, in iterations (status.json's total, else the config's)."""
    cfg = group.config
    planned = [i.total_steps for i in group.runs if isinstance(i.total_steps, int)]
    return max(planned) if planned else (cfg.iterations or cfg.epochs * -(-50000 // max(1, cfg.batch_size)))


def training_text(groups: list[RunGroup]) -> str:
    """'Trained 2,346 iterations (6 epochs) at batch 64', or the range when the groups differ."""
    its = sorted({iterations(g) for g in groups})
    epochs = sorted({g.runs[0].total_epochs or g.config.epochs for g in groups})
    batches = sorted({g.config.batch_size for g in groups})
    length = f"{its[0]:,}" if len(its) == 1 else f"{its[0]:,} to {its[-1]:,}"
    ep = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]} to {epochs[-1]}"
    return (f"Trained {length} iterations ({ep} epoch{'s' if epochs[-1] != 1 else ''}) at batch "
            f"{' / '.join(map(str, batches))}")


def cell_text(group: RunGroup | None, mark: str = PARTIAL_MARK) -> str:
    """A table cell: the group's 'best (mean ± std, n)', marked when some of its runs are partial; '-' for none."""
    return "-" if group is None else group.cell() + (mark if group.partial else "")


def data_title(data: str, dataset: str) -> str:
    """What a caption says the runs trained on: their data's description, else the data set's name."""
    return data or {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}.get(dataset, dataset)


@dataclass
class Row:
    depth: int
    variant: str                                     # '' or 'width=64, optimizer=adam'
    cells: dict[str, RunGroup] = field(default_factory=dict)   # kind -> group
    paper: float | None = None
    lab_report: float | None = None

    @property
    def label(self) -> str:
        return f"{self.depth}" + (f" ({self.variant})" if self.variant else "")


@dataclass
class Table6:
    dataset: str
    kinds: list[str]                                 # columns present, in the order plain, A, B
    rows: list[Row]
    references: bool                                 # CIFAR-10: the paper's and the lab report's columns
    data: str = ""                                   # what every run trained on ('CIFAR-10, 5,000 training images')
    training: str = ""                               # how long and at what batch ('Trained 2,346 iterations ...')

    @property
    def partial_runs(self) -> int:
        return sum(g.partial for r in self.rows for g in r.cells.values())

    def header(self) -> list[str]:
        cols = ["depth"] + [KIND_TITLES[k] for k in self.kinds]
        return cols + (["He et al. 2016", "lab report"] if self.references else [])

    def text_rows(self, mark: str = PARTIAL_MARK) -> list[list[str]]:
        out = []
        for r in self.rows:
            cells = [r.label]
            for k in self.kinds:
                g = r.cells.get(k)
                cells.append(cell_text(g, mark) + (SHORT_MARK if self.is_short(g) else ""))
            if self.references:
                cells += [pct(r.paper, unit=False), pct(r.lab_report, unit=False)]
            out.append(cells)
        return out

    def is_short(self, group: RunGroup | None) -> bool:
        """Beside the paper's numbers, a group trained for less than half its 64k iterations (before its first lr
        drop) is not comparable with them: its cell is marked."""
        return bool(self.references and group is not None and iterations(group) < PAPER_ITERATIONS / 2)

    def caption(self) -> str:
        what = data_title(self.data, self.dataset)
        text = (f"Final test error (%) on {what}: best (mean ± std, n) over seeds; std is the sample standard "
                f"deviation.")
        if self.training:
            text += f" {self.training}."
        if self.references:
            text += (" He et al. 2016 (Table 6, option A: 64,000 iterations at batch 128) and the lab report (164 "
                     "epochs at batch 64) for reference.")
        return text

    def footnote(self) -> str:
        n = self.partial_runs
        notes = [(f"{PARTIAL_MARK} partial: {n} run{'s' if n != 1 else ''} of this table "
                  f"{'have' if n != 1 else 'has'} not finished every epoch")] if n else []
        if any(self.is_short(g) for r in self.rows for g in r.cells.values()):
            notes.append(f"{SHORT_MARK} trained for less than half of the paper's {PAPER_ITERATIONS:,} iterations: "
                         f"not comparable with its numbers")
        return "; ".join(notes)


def build_table(groups: list[RunGroup]) -> Table6:
    """Table 6 of these groups (all of one data set: see ``select_runs``)."""
    dataset = groups[0].config.dataset if groups else "cifar10"
    variants = variant_labels(groups)
    rows: dict[tuple[int, str], Row] = {}
    for g in groups:
        key = (g.depth, variants[id(g)])
        row = rows.setdefault(key, Row(g.depth, variants[id(g)]))
        row.cells[g.kind] = g
    refs = dataset == "cifar10"
    for row in rows.values():
        if refs and all(g.config.arch == "resnet" for g in row.cells.values()):   # Table 6 has ResNets only
            row.paper, row.lab_report = PAPER_ERRORS.get(row.depth), LAB_REPORT_ERRORS.get(row.depth)
    kinds = [k for k in KINDS if any(g.kind == k for g in groups)]
    ordered = [rows[k] for k in sorted(rows)]
    datas = {data_text(g.data) for g in groups if g.data}
    data = datas.pop() if len(datas) == 1 else ("the data given per row" if datas else "")
    return Table6(dataset, kinds, ordered, refs, data, training_text(groups) if groups else "")


# -- writers -----------------------------------------------------------------------------------------------------------
def to_markdown(table: Table6) -> str:
    head = table.header()
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for cells in table.text_rows():
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    text = "\n".join(lines) + "\n\n" + table.caption() + "\n"
    return text + (f"\n{table.footnote()}\n" if table.footnote() else "")


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$",
        PARTIAL_MARK: r"\textsuperscript{\dag}", SHORT_MARK: r"\textsuperscript{\ddag}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def to_latex(table: Table6) -> str:
    """A booktabs table (needs \\usepackage{booktabs} in the preamble)."""
    head = table.header()
    lines = [r"\begin{table}[t]", r"\centering",
             r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}", r"\toprule",
             " & ".join(tex_escape(h) for h in head) + r" \\", r"\midrule"]
    for cells in table.text_rows():
        lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    caption = table.caption() + (" " + table.footnote() + "." if table.footnote() else "")
    lines += [r"\caption{" + tex_escape(caption) + "}", r"\label{tab:resnet-cifar}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def csv_columns(table: Table6) -> list[str]:
    cols = ["depth", "variant"]
    for k in table.kinds:
        name = "plain" if k == "none" else k
        cols += [f"{name}_{s}" for s in ("n", "best", "mean", "std", "partial", "seeds")]
    return cols + (["paper", "lab_report"] if table.references else [])


def to_csv(table: Table6) -> str:
    """One line per row with plain numbers (empty where none): n, best, mean, std, partial runs, seeds per kind."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(csv_columns(table))
    for r in table.rows:
        line: list = [r.depth, r.variant]
        for k in table.kinds:
            g = r.cells.get(k)
            if g is None:
                line += [""] * 6
            else:
                line += [g.n, _f(g.best), _f(g.mean), _f(g.std), g.partial, " ".join(map(str, g.seeds))]
        if table.references:
            line += [_f(r.paper), _f(r.lab_report)]
        w.writerow(line)
    return buf.getvalue()


def _f(v: float | None) -> str:
    return "" if v is None else f"{v:.4f}"
