"""The table of runs: columns from ``core.store.runs.run_summary_row``, sorting, filtering, marks, live updates.

Rows are keyed by run id. A refresh with the same rows in the same order only rewrites the cells that changed,
so the cursor, the scroll position and the marks stay where the user left them.
"""
from __future__ import annotations

import re
from dataclasses import fields
from functools import lru_cache
from operator import attrgetter
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
_VARIED_VALUES = attrgetter(*_VARIED_ORDER)


def varied_columns(infos: list[RunInfo]) -> list[str]:
    """The settings of ``VARIED`` in which these runs differ (at most MAX_VARIED), in RunConfig's order: the table's
    extra columns (each setting's values read for every run at once: 10,000 runs compared one at a time took 0.13 s,
    at every key of the filter)."""
    configs = [i.config for i in infos if i.config is not None]
    if not configs:
        return []
    columns = zip(*map(_VARIED_VALUES, configs))
    return [k for k, values in zip(_VARIED_ORDER, columns) if len(set(values)) > 1][:MAX_VARIED]


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


EAGER = 200     # changed runs whose cells a show makes at once; more are made BATCH at a time between frames
BATCH = 250     # (about 25 ms: a key waits no longer for the pass that sizes the columns)


def _same(a: tuple, b: tuple) -> bool:
    """Whether two rows' makings are the same: the same RunInfo object (the watcher replaces it when it re-reads
    the run), mark, live progress, shown id and varied settings."""
    return a[0] is b[0] and all(x is y or x == y for x, y in zip(a[1:], b[1:]))


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
        self._cells: dict[str, tuple[tuple, tuple]] = {}   # run id -> (what its cells were made of, its cells)
        self._inputs: dict[str, tuple] = {}     # run id -> what its cells are to be made of now
        self._shown: tuple = (None, 0, set(), {})   # the runs last shown, as (list, id width, marks, live progress)
        self._todo: list[str] = []              # runs whose cells wait for ``_make_some``
        self._wider: list[int] = []             # widths of cells made since the columns were last widened
        self._widen_asked = False
        self._varied: list[str] = []    # the varied settings shown as columns
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def column_keys(self) -> list[str]:
        """The column keys in order: the fixed ones with the varied settings after paper%."""
        return [str(key.value) for key in self.columns]

    def _set_varied(self, varied: list[str]) -> None:
        """Rebuild the columns with these varied settings after paper%: the runs shown now differ in them."""
        self._varied, self._wider = varied, []
        self.clear(columns=True)
        keys = [k for k, _ in COLUMNS]
        at = keys.index("paper") + 1
        labels = dict(COLUMNS)
        for key in keys[:at] + [f"v:{k}" for k in varied] + keys[at:]:
            self.add_column(labels.get(key) or VARIED_TITLES.get(key[2:], key[2:]), key=key)

    def show(self, infos: list[RunInfo], marked: set[str], live: dict[str, Progress] | None = None) -> None:
        """Make the table show these runs in this order, keeping the cursor on its run (or, when that run went, on
        the row that took its place) and the scroll where it was. A row's cells are made when it is drawn, or by
        the pass that sizes the columns (``_make_some``), and again only when what they are made of changed."""
        live = live or {}
        id_width = id_width_for(self.app.size.width)
        if infos is self._shown[0] and (id_width, marked, live) == self._shown[1:]:
            return                                  # the same list of runs (RunsScreen.visible_infos), nothing new
        self._shown = (infos, id_width, set(marked), dict(live))
        wanted = [i.id for i in infos]
        order_changed = wanted != self._keys
        if id_width != self._id_width:              # the run column sized afresh
            self._id_width, order_changed = id_width, True
            self.columns[ColumnKey("id")].content_width = 0
        varied = varied_columns(infos)
        if varied != self._varied:
            self._set_varied(varied)
            order_changed = True
        shown, varied_t = short_ids(wanted, id_width), tuple(varied)
        inputs, stale = {}, []
        for info in infos:
            made_of = (info, info.id in marked, live.get(info.id), id_width, shown[info.id], varied_t)
            inputs[info.id] = made_of
            old = self._cells.get(info.id)
            if old is None or not _same(old[0], made_of):
                stale.append(info.id)
        self._inputs = inputs
        if order_changed:
            self.set_rows(wanted, self._row)
        if len(stale) <= EAGER:                     # a poll's few changed runs: now
            for run_id in stale:
                self._row(run_id)
            self._widen_pending()
            if stale and not order_changed:
                self.rows_changed()
        else:                                       # thousands (the first show): a batch at a time, the screen first
            making, self._todo = bool(self._todo), stale
            if not making:                          # after this frame: the rows in view are made as it is drawn
                self.call_after_refresh(self._make_some)
        if len(self._cells) > len(self.app.watcher.infos) + EAGER:     # runs deleted since: their cells go
            self._cells = {k: v for k, v in self._cells.items() if k in self.app.watcher.infos}

    def _row(self, run_id: str) -> tuple:
        """The run's cells in column order (made again when what they are made of changed); a cell wider than its
        column widens it once the frame is drawn."""
        made_of = self._inputs[run_id]
        old = self._cells.get(run_id)
        if old is not None and _same(old[0], made_of):
            return old[1]
        info, marked, live, id_width, shown, varied = made_of
        cells = row_cells(info, marked, live, id_width, shown)
        for k in varied:                 # the settings the runs shown vary (a sweep), one column each
            value = getattr(info.config, k, None) if info.config is not None else None
            text = "-" if value is None else value_text(value)
            if k == "milestones" and value:      # epochs and iterations side by side: say which
                text += " ep" if info.config.milestone_unit == "epoch" else " it"
            cells[f"v:{k}"] = Text(text, justify="right" if isinstance(value, (int, float)) else "left")
        row = tuple(cells[key.value] for key in self.columns)
        widths = tuple(_cell_width(c) for c in row)
        self._cells[run_id] = (made_of, row)
        if any(w > c.content_width for w, c in zip(widths, self.columns.values())):
            self._wider = [max(a, b) for a, b in zip(self._wider, widths)] if self._wider else list(widths)
            if not self._widen_asked:
                self._widen_asked = True
                self.call_after_refresh(self._widen_pending)
        return row

    def _widen_pending(self) -> None:
        self._widen_asked = False
        wider, self._wider = self._wider, []
        if wider:
            self.widen(wider)

    def _make_some(self) -> None:
        """Make the cells of the next BATCH runs waiting for them, then let the event loop take keys and draw before
        the next batch: the columns reach their width within a second or two of a first show of 10,000 runs,
        while every row is already in the table (sortable, filterable) from the start."""
        todo, self._todo = self._todo[:BATCH], self._todo[BATCH:]
        for run_id in todo:
            if run_id in self._inputs:
                self._row(run_id)
        self._widen_pending()
        if self._todo:
            self.set_timer(0.001, self._make_some)

    @property
    def current_id(self) -> str | None:
        return self.current_key
