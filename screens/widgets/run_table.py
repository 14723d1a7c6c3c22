"""The table of runs: columns from ``core.store.runs.run_summary_row``, sorting, filtering, marks, live updates.

Rows are keyed by run id. A refresh with the same rows in the same order only rewrites the cells that changed,
so the cursor, the scroll position and the marks stay where the user left them.
"""
from __future__ import annotations

import re
from dataclasses import fields
from functools import lru_cache
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets.data_table import ColumnKey

from core.spec.config import RunConfig
from core.spec.grid import value_text
from core.store.runs import RunInfo, run_summary_row
from core.train.events import Progress
from core.util.formatting import (
    decimals,
    depth_text,
    duration,
    epochs_text,
    mem,
    one_line,
    pct,
    rate,
    short_id,
    short_ids,
    state_style,
    world_text,
)

from .state_text import state_text
from .table_scroll import SIDEWAYS_KEYS, ColumnScroll
from .virtual_table import VirtualTable

# (key, label, sort key from the summary row); the key order is the column order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("mark", " "),
    ("id", "run"),
    ("status", "status"),
    ("epochs", "epochs"),
    ("final", "final%"),
    ("best", "best%"),
    ("paper", "paper%"),
    ("depth", "depth"),
    ("shortcut", "sc"),
    ("width", "width"),
    ("optimizer", "optim"),
    ("schedule", "sched"),
    ("duration", "time"),
    ("speed", "img/s"),
    ("epoch_s", "s/epoch"),
    ("mem", "peak mem"),
    ("note", "note"),
)
SORT_FIELDS = {"mark": "mark", "id": "id", "status": "status", "epochs": "epochs_done", "final": "final_test_err",
               "best": "best_test_err", "paper": "paper_err", "depth": "depth", "shortcut": "shortcut",
               "width": "width", "optimizer": "optimizer", "schedule": "schedule", "duration": "duration_s",
               "speed": "images_per_s", "epoch_s": "epoch_s", "mem": "peak_mem_bytes", "note": "error"}


# Settings a sweep varies get a column of their own ("v:lr", after paper%) while the runs shown differ in them; the
# fixed columns already show depth, shortcut, width, optimizer, schedule and the length (epochs done/total).
VARIED = ("arch", "lr", "batch_size", "milestones", "momentum", "weight_decay", "warmup_iters",
          "lr_factor", "max_train_images", "augment", "normalize", "dataset", "seed", "sweep_name")
VARIED_TITLES = {"batch_size": "batch", "milestones": "lr drops", "weight_decay": "wd", "max_train_images": "train n",
                 "warmup_iters": "warm-up", "sweep_name": "sweep", "lr_factor": "lr x"}
MAX_VARIED = 5
_VARIED_ORDER = tuple(f.name for f in fields(RunConfig) if f.name in VARIED)


def varied_columns(infos: list[RunInfo]) -> list[str]:
    """The settings of ``VARIED`` in which these runs differ (at most MAX_VARIED), in RunConfig's order: the table's
    extra columns (only those settings compared: ten thousand configs made into dicts took 0.5 s a refresh)."""
    configs = [i.config for i in infos if i.config is not None]
    if not configs:
        return []
    first = configs[0]
    return [k for k in _VARIED_ORDER if any(getattr(c, k) != getattr(first, k) for c in configs)][:MAX_VARIED]


ID_WIDTH = 20       # longer run ids are shortened (the line under the table has them whole) at 80 columns,
WIDE_ID_WIDTH = 40  # ... and the run column grows with the terminal up to this: the paper's column stays in view


def id_width_for(columns: int) -> int:
    """The run column's width on a terminal this wide: each column beyond 80 goes to it (up to WIDE_ID_WIDTH)."""
    return max(ID_WIDTH, min(WIDE_ID_WIDTH, ID_WIDTH + columns - 80))


def live_progress(info: RunInfo, live: Progress | None = None) -> float:
    """The run's progress 0..1: from the trainer's latest Progress event when fresher than status.json."""
    if live is not None and live.total_steps and live.step >= info.step:
        return min(1.0, live.step / live.total_steps)
    return info.progress


def row_cells(info: RunInfo, marked: bool, live: Progress | None = None, id_width: int = ID_WIDTH,
              shown_id: str | None = None) -> dict[str, Any]:
    """The cells of a run's row; ``shown_id``: its id as the table shows it (default: shortened to ``id_width``)."""
    row = run_summary_row(info)
    final, best, paper = row["final_test_err"], row["best_test_err"], row["paper_err"]
    final_text = Text(pct(final, unit=False), justify="right")
    if final is not None and paper is not None:
        final_text.stylize("green" if final <= paper else "")
    return {
        "mark": Text("●" if marked else " ", style="bold magenta"),
        "id": shown_id or short_id(info.id, id_width),
        "status": state_text(info.state, live_progress(info, live)).append(world_text(row["world_size"])),
        "epochs": Text(epochs_text(row["epochs_done"], row["total_epochs"]), justify="right"),
        "final": final_text,
        "best": Text(pct(best, unit=False), justify="right"),
        "paper": Text(pct(paper, unit=False), justify="right", style="dim"),
        "depth": Text(depth_text(row), justify="right"),     # 'PreAct-164', 'WRN-28-10' for the follow-ups
        "shortcut": row["shortcut"] or "-",
        "width": Text("-" if row["width"] is None else str(row["width"]), justify="right"),
        "optimizer": row["optimizer"] or "-",
        "schedule": row["schedule"] or "-",
        "duration": Text(duration(row["duration_s"]), justify="right"),
        "speed": Text(rate(row["images_per_s"]), justify="right"),
        "epoch_s": Text(decimals(row["epoch_s"], 2), justify="right"),
        "mem": Text(mem(row["peak_mem_bytes"]), justify="right"),
        "note": Text(one_line(row["error"] or row["slurm"] or row["phase"]), style=state_style(info.state)),
    }


def natural(text: str) -> tuple:
    """'r14-A-s2' -> ('r', 14, '-a-s', 2, ''): numbers inside text compare as numbers, so r8 comes before r14."""
    parts = re.split(r"(\d+)", text.lower())
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def sort_key(info: RunInfo, column: str, marked: set[str]):
    if column == "mark":
        return (False, (info.id not in marked, natural(info.id)))
    if column.startswith("v:"):     # a varied setting's column
        value = getattr(info.config, column[2:], None) if info.config is not None else None
        value = value_text(value) if isinstance(value, (tuple, bool)) else value
    else:
        value = run_summary_row(info).get(SORT_FIELDS.get(column, "id"))
    # None (unknown) sorts last whichever the direction; numbers before text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (value is None, (0, value))
    return (value is None, (1, natural(str(value or ""))))


# a table of rows: home and end go to the first and the last row (DataTable's own scroll to the first and the last
# column, which took the status and the results out of view)
ROW_KEYS = [Binding("home", "scroll_top", "First row", show=False),
            Binding("end", "scroll_bottom", "Last row", show=False)]


@lru_cache(maxsize=4096)
def _word_width(text: str) -> int:
    return Text.from_markup(text).cell_len      # as the table shows a str: markup read


def _cell_width(cell: Any) -> int:
    if isinstance(cell, Text):
        return cell.cell_len
    return _word_width(cell) if isinstance(cell, str) else len(str(cell))


class RunsTable(ColumnScroll, VirtualTable):
    """The runs, one row per run id, drawn as they scroll into view (screens/widgets/virtual_table.py: a lab's
    10,000 runs cost a screenful); ← → scroll by columns (screens/widgets/table_scroll.py)."""

    BINDINGS = SIDEWAYS_KEYS

    def on_mount(self) -> None:
        self.zebra_stripes = True
        self.fixed_columns = 3          # the mark, the run and its status stay in view when the table scrolls sideways
        self._id_width = ID_WIDTH       # run ids shortened to this (whole on wide terminals)
        # run id -> (what its cells were made of, its cells in column order, their widths)
        self._cells: dict[str, tuple[tuple, tuple, tuple]] = {}
        self._varied: list[str] = []    # the varied settings shown as columns
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def column_keys(self) -> list[str]:
        """The column keys in order: the fixed ones with the varied settings after paper%."""
        keys = [k for k, _ in COLUMNS]
        at = keys.index("paper") + 1
        return keys[:at] + [f"v:{k}" for k in self._varied] + keys[at:]

    def _set_varied(self, varied: list[str]) -> None:
        """Rebuild the columns with these varied settings after paper%: the runs shown now differ in them."""
        self._varied = varied
        self.clear(columns=True)
        labels = dict(COLUMNS)
        for key in self.column_keys():
            name = key[2:]
            self.add_column(labels.get(key) or VARIED_TITLES.get(name, name), key=key)

    def show(self, infos: list[RunInfo], marked: set[str], live: dict[str, Progress] | None = None) -> None:
        """Make the table show these runs in this order, keeping the cursor on its run (or, when that run went, on
        the row that took its place) and the scroll where it was. Only what is drawn is made per row: the cells of
        the runs whose info changed, and each column's widest cell."""
        wanted = [i.id for i in infos]
        id_width = id_width_for(self.app.size.width)
        remake = id_width != self._id_width
        if remake:                                  # the run column sized afresh
            self._id_width = id_width
            self.columns[ColumnKey("id")].content_width = 0
        varied = varied_columns(infos)
        if varied != self._varied:
            self._set_varied(varied)
            remake = True
        shown = short_ids(wanted, id_width)
        rows, widths, remade = self._cells_of(infos, marked, live or {}, id_width, shown, varied)
        column_widths = [max(w) for w in zip(*widths)] if widths else [0] * len(self.columns)
        if wanted == self._keys and not remake:
            if remade:
                self.update_rows({run_id: rows[run_id] for run_id in remade}, column_widths)
            return
        self.set_rows(wanted, rows, column_widths)

    def _cells_of(self, infos: list[RunInfo], marked: set[str], live: dict[str, Progress], id_width: int,
                  shown: dict[str, str], varied: list[str]) -> tuple[dict[str, tuple], list[tuple], list[str]]:
        """Each run's cells in column order and their widths, made again only for the runs whose info, mark, live
        progress or shown id changed (the watcher replaces a run's RunInfo when it re-reads it): with thousands of
        runs a refresh costs what changed, not every row. Returns the cells, the widths and the ids made again."""
        rows, widths, remade, cache = {}, [], [], {}
        keys = self.column_keys()
        for info in infos:
            made_of = (info, info.id in marked, live.get(info.id), id_width, shown[info.id], tuple(varied))
            old = self._cells.get(info.id)
            if old is not None and old[0][0] is info and all(a is b or a == b for a, b in zip(old[0][1:], made_of[1:])):
                _, row, width = old
            else:
                cells = row_cells(info, made_of[1], made_of[2], id_width, made_of[4])
                for k in varied:             # the settings the runs shown vary (a sweep), one column each
                    value = getattr(info.config, k, None) if info.config is not None else None
                    text = "-" if value is None else value_text(value)
                    if k == "milestones" and value:      # epochs and iterations side by side: say which
                        text += " ep" if info.config.milestone_unit == "epoch" else " it"
                    cells[f"v:{k}"] = Text(text, justify="right" if isinstance(value, (int, float)) else "left")
                row = tuple(cells[k] for k in keys)
                width = tuple(_cell_width(c) for c in row)
                remade.append(info.id)
            cache[info.id] = (made_of, row, width)
            rows[info.id] = row
            widths.append(width)
        self._cells = cache
        return rows, widths, remade

    @property
    def current_id(self) -> str | None:
        return self.current_key
