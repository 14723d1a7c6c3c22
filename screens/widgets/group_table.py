"""The runs table folded by seed: one row per group of runs that differ only in their seed (``core.results.groups``).

Each row shows the group's settings, n, its seeds, and the paper's figures: best and mean ± std (sample) of the
final test errors, the mean time per run (what a wider or deeper net costs), beside the paper's error. Rows are
keyed by the group's first run id, so the cursor stays put while runs update.
"""
from __future__ import annotations

from collections import Counter

from rich.text import Text

from core.results.cost import seconds
from core.results.groups import RunGroup, group_runs, variant_labels
from core.spec.archs import widths_text
from core.store.runs import RunInfo
from core.util.formatting import duration, pct, state_style

from .run_table import ROW_KEYS
from .sized_table import SizedTable
from .table_scroll import SIDEWAYS_KEYS, ColumnScroll

COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", " "), ("group", "group"), ("n", "n"), ("seeds", "seeds"), ("best", "best%"), ("mean", "mean ± std%"),
    ("paper", "paper%"), ("time", "time/run"), ("states", "states"), ("differs", "other settings that differ"),
)


def mean_std_text(group: RunGroup) -> str:
    if group.mean is None:
        return "-"
    return f"{group.mean:.2f} ± {group.std:.2f}" if group.std is not None else f"{group.mean:.2f}"


def states_text(group: RunGroup) -> Text:
    counts = Counter(i.state for i in group.runs)
    text = Text()
    for state, n in counts.most_common():
        if text:
            text.append(", ")
        text.append(f"{n} {state}", style=state_style(state))
    return text


def seeds_text(seeds: list[int]) -> str:
    """[1, 2, 3, 5] -> '1-3,5'; a group pooled from several sweeps that reused seeds says how many runs each seed
    has: [1, 1, 1, 2, 2, 2] -> '1-2 (3 runs each)', [1, 1, 2] -> '1-2 (3 runs)'."""
    unique = sorted(set(seeds))
    parts, start = [], None
    for i, s in enumerate(unique):
        if start is None:
            start = s
        if i + 1 == len(unique) or unique[i + 1] != s + 1:
            parts.append(str(start) if start == s else f"{start}-{s}")
            start = None
    text = ",".join(parts)
    if len(seeds) == len(unique):
        return text
    counts = {seeds.count(s) for s in unique}
    return f"{text} ({counts.pop()} runs each)" if len(counts) == 1 else f"{text} ({len(seeds)} runs)"


# the settings a group's label names already
IN_LABEL = ("arch", "width", "widths", "stem_width", "dropout", "optimizer", "schedule")


def leading(variant: str) -> str:
    """What a seed group's row leads with: its settings that tell it apart ('lr=0.05, batch_size=64'; from
    core.results.groups.variant_labels), less those its label names (arch, width, optimizer, schedule)."""
    return ", ".join(p for p in variant.split(", ") if p and p.partition("=")[0] not in IN_LABEL)


class GroupsTable(ColumnScroll, SizedTable):
    """DataTable of seed groups; ``groups`` holds what is shown, in order; ← → scroll by columns."""

    BINDINGS = ROW_KEYS + SIDEWAYS_KEYS

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.fixed_columns = 2          # the mark and the group stay in view when the table scrolls sideways
        self.groups: list[RunGroup] = []
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def show(self, infos: list[RunInfo], marked: set[str]) -> None:
        groups = group_runs(infos)
        variants = variant_labels(groups)
        current = self.current_group
        keep = current.runs[0].id if current is not None else None
        self.groups = groups
        scroll_x = self.scroll_x        # kept across refreshes: a table read sideways stays where it was
        self.clear()
        for g in groups:
            cfg = g.config
            # a WRN's name says its width (WRN-16-2); the others 'w16' or their stages '30/60/90 stem 64'
            width = "" if cfg.arch == "wrn" else f" {widths_text(cfg.widths, cfg.stem_width)}"
            label = Text(f"{g.name}{width} {cfg.optimizer} {cfg.schedule}")
            if lead := leading(variants[id(g)]):   # what sets it apart first: 7 of 19 rows read the same otherwise
                label = Text.assemble((lead, "bold"), "  ", label)
            n_marked = sum(1 for i in g.runs if i.id in marked)
            mark = "●" if n_marked == len(g.runs) else ("◐" if n_marked else " ")
            n_text = f"{g.n}" if g.n == len(g.runs) else f"{g.n}/{len(g.runs)}"
            self.add_row(Text(mark, style="bold magenta"), label, Text(n_text, justify="right"),
                         seeds_text(g.seeds), Text(pct(g.best, unit=False), justify="right"),
                         Text(mean_std_text(g), justify="right"),
                         Text(pct(g.runs[0].paper_err, unit=False), justify="right", style="dim"),
                         Text(duration(seconds(g)) if seconds(g) else "-", justify="right"),   # mean over its runs
                         states_text(g), Text(variants[id(g)], style="dim"), key=g.runs[0].id)
        keys = [g.runs[0].id for g in groups]
        if keep in keys:
            self.move_cursor(row=keys.index(keep), animate=False, scroll=False)
        self.scroll_to(x=scroll_x, animate=False, immediate=True)

    @property
    def current_group(self) -> RunGroup | None:
        groups = getattr(self, "groups", [])
        return groups[self.cursor_row] if groups and 0 <= self.cursor_row < len(groups) else None
