"""Home screen: every run in the store, live. Sort by clicking a header (or o), filter with /, mark with space."""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from core.results.groups import run_group
from core.store.query import QueryError, matches, parse_query
from core.store.runs import RunInfo
from core.util.formatting import duration, epochs_text, pct, state_style

from .widgets.footer import Footer
from .widgets.group_table import GroupsTable, mean_std_text, seeds_text
from .widgets.ordered_input import OrderedInput
from .widgets.report_export import export_report
from .widgets.resume import RestyleWhenChanged
from .widgets.run_table import COLUMNS, RunsTable, sort_key
from .widgets.state_text import state_hint
from .widgets.table_scroll import SIDEWAYS_HELP
from .widgets.worker_errors import TellWorkerErrors

EMPTY_HINT = """No runs yet in {root}.

Press n to open the new-run form (pick a preset, depth and shortcut, then ctrl+s to launch),
or start one from a shell; it appears here while it trains:

    python tui_app.py train --preset quick --dataset synthetic --runs-dir {root}
"""


class OpenRunsTable(RunsTable):
    """The runs table, whose enter key is shown in the footer as 'Open'."""

    BINDINGS = [Binding("enter", "select_cursor", "Open", show=True)]


class FilterInput(OrderedInput):
    """The filter box. Enter hands the focus back to the table at once (not deferred), so keys typed right after
    it (r, s, ...) act on the table instead of landing in the filter text."""

    BINDINGS = [Binding("enter", "done", "Done", show=False)]

    def action_done(self) -> None:
        screen = self.screen
        if not self.value:
            self.display = False
        screen.set_focus(screen.query_one(GroupsTable) if screen.grouped else screen.query_one(RunsTable))


def fit_title(parts: list, folder: str, width: int) -> Text:
    """'ResLab  ? keys  ·  7 run(s)  ·  ...  ·  folder' on one line: on a narrow terminal the separators close up, the
    keys hint goes, then 'sorted by' reads 'by'; the folder takes the room left (``with_folder``). One line always,
    so the table never moves down a line when the sort order appears (80 columns)."""
    def build(sep: str, hint: bool, short: bool) -> Text:
        title = Text.assemble(("ResLab", "bold"), ("  ? keys", "dim") if hint else "")
        for text, style in parts:
            title.append(sep)
            title.append(text.replace("sorted by ", "by ") if short else text, style=style)
        return title
    for sep, hint, short in (("  ·  ", True, False), (" · ", True, False), (" · ", False, False),
                             (" · ", False, True)):
        title = build(sep, hint, short)
        if title.cell_len <= width:
            return with_folder(title, folder, width)
    title.truncate(width, overflow="ellipsis")
    return title


def with_folder(title: Text, folder: str, width: int) -> Text:
    """The title with the runs folder last, shortened from the left to the room left on the line: what changes
    (filter, marks, order) never goes off the edge of a narrow terminal for a long path."""
    room = width - title.cell_len - len("  ·  ")
    if room >= len(folder):
        return title.append(f"  ·  {folder}", style="dim")
    if room >= 12:
        return title.append(f"  ·  …{folder[-(room - 1):]}", style="dim")
    return title                                    # no room: the state of the table first (it wraps if need be)


class RunsScreen(TellWorkerErrors, RestyleWhenChanged, Screen):
    CSS_PATH = "runs.tcss"
    BINDINGS = [
        # priority: taken as it is read, so keys typed right after it wait for the form instead of reaching the table
        Binding("n", "new_run", "New", priority=True),
        Binding("space", "mark", "Mark", key_display="␣"),
        Binding("u", "clear_marks", "Clear all marks", show=False),
        Binding("c", "compare", "Compare"),
        Binding("s", "stop", "Stop"),
        Binding("p", "pause", "Pause", show=False),                  # the footer fits 80 columns; ? lists it
        Binding("r", "resume", "Resume"),
        Binding("d", "delete", "Del"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("g", "queue", "Queue"),
        Binding("t", "study", "Study of the highlighted trial (its trials, best so far, chart)", show=False),
        Binding("e", "report", "Report of the marked runs (else of those shown)", show=False),
        Binding("f", "toggle_groups", "Seed groups", show=False),   # named in the title when seeds repeat
        Binding("o", "cycle_sort", "Sort by the next column", show=False),
        Binding("O", "reverse_sort", "Reverse the order", show=False),  # what a second click on a header does
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "app.quit", "Quit"),
        Binding("question_mark", "app.help", "Keys of this screen", show=False),   # named in the title bar
    ]
    HELP_TITLE = "runs"
    KEYS_HELP = [("click a header", "sort by that column (again: reverse; O reverses too); the title says the order"),
                 ("↑ ↓ pgup pgdn home end", "move in the table"), SIDEWAYS_HELP,
                 ("ctrl+p", "every command, searchable")]

    def __init__(self) -> None:
        super().__init__(id="runs")
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.filter_text = ""
        self.filter_error: str | None = None
        self.grouped = False            # one row per seed group (f)
        self._repeat: tuple[int, bool] = (-1, False)  # (the watcher's version, whether seeds repeat then)
        self._visible: tuple[tuple | None, list[RunInfo]] = (None, [])    # (what it was worked out from, the runs)

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield OpenRunsTable(id="table")
        yield GroupsTable(id="groups")
        yield Static(id="empty")
        yield Static(id="current")
        yield FilterInput(placeholder="filter: words and settings, all must hold (plain 56 width>=32 tag=best); esc "
                                      "clears",
                          id="filter", compact=True)
        yield Footer(compact=True, show_command_palette=False)  # ? (named in the title bar) lists ^p too

    def on_mount(self) -> None:
        self.app.runs_changed_signal.subscribe(self, self.runs_changed)
        self.query_one("#filter", Input).display = False
        self.query_one(GroupsTable).display = False
        self.refresh_table()
        self.query_one(RunsTable).focus()

    def on_screen_resume(self) -> None:
        self.refresh_table()

    # -- data ----------------------------------------------------------------------------------------------------------
    def on_resize(self) -> None:
        self.refresh_table()                    # run ids whole on a wide terminal, shortened on a narrow one

    def runs_changed(self, changed: set[str]) -> None:
        if changed or self.app.watcher.any_active:
            self.refresh_table()

    def _seeds_repeat(self, infos: list[RunInfo]) -> bool:
        """Whether some runs differ only in their seed (the title then offers f); worked out again only when the
        runs changed (not at each key of a filter), each run's group once (``run_group``)."""
        version = self.app.watcher.version
        if self._repeat[0] == version:
            return self._repeat[1]
        keys = [key for key in map(run_group, infos) if key is not None]
        self._repeat = (version, len(set(keys)) < len(keys))
        return self._repeat[1]

    def visible_infos(self) -> list[RunInfo]:
        """The runs the filter selects, in the order chosen: the same list (worked out again only when the runs,
        the filter or the order changed: a refresh with none of them changed costs nothing at 10,000 runs)."""
        app = self.app
        key = (app.watcher.version, self.filter_text, self.sort_column, self.sort_reverse,
               frozenset(app.marked) if self.sort_column == "mark" else None)
        if self._visible[0] == key:
            return self._visible[1]
        try:
            query, self.filter_error = parse_query(self.filter_text), None
        except QueryError as exc:        # said in the title: never 0 runs shown without a word
            query, self.filter_error = None, str(exc)
        infos = [i for i in self.app.watcher.ordered() if query is not None and matches(i, query)]
        if self.sort_column:
            keyed = [(sort_key(i, self.sort_column, self.app.marked), i) for i in infos]
            known = sorted(((key, i) for key, i in keyed if not key[0]), key=lambda pair: pair[0][1],
                           reverse=self.sort_reverse)
            unknown = [i for key, i in keyed if key[0]]  # unknown values sort last in either direction
            infos = [i for _, i in known] + unknown
        self._visible = (key, infos)
        return infos

    def refresh_table(self) -> None:
        app = self.app
        all_infos = app.watcher.ordered()
        infos = self.visible_infos()
        table = self.query_one(RunsTable)
        groups = self.query_one(GroupsTable)
        if self.grouped:
            groups.show(infos, app.marked)
        else:
            table.show(infos, app.marked, live=app.live)
        empty = not all_infos
        table.display = not empty and not self.grouped
        groups.display = not empty and self.grouped
        self.query_one("#empty", Static).display = empty
        if empty:
            self.query_one("#empty", Static).update(EMPTY_HINT.format(root=app.store.root))
        self.query_one("#title", Static).update(fit_title(self._title_parts(all_infos, infos, groups),
                                                          str(app.store.root), self.size.width - 2))
        self.update_current()

    def _title_parts(self, all_infos: list[RunInfo], infos: list[RunInfo], groups: GroupsTable) -> list:
        """The title's parts after 'ResLab', each (text, style): what the table shows now."""
        if self.filter_error:        # alone, where a narrow terminal cannot cut it off
            return [(f"filter: {self.filter_error}", "bold red")]
        running = self.app.watcher.active_count
        parts = [(f"{len(all_infos)} run(s)", "")]
        if running:
            parts.append((f"{running} training", "green"))
        if self.filter_text:
            parts.append((f"filter '{self.filter_text}': {len(infos)} shown", "yellow"))
        if self.app.marked:
            parts.append((f"{len(self.app.marked)} marked", "magenta"))
        if self.grouped:
            parts.append((f"{len(groups.groups)} seed group(s) (f: runs)", "cyan"))
        elif self._seeds_repeat(all_infos):
            parts.append(("f: seed groups", "cyan"))
        if self.sort_column and not self.grouped:
            label = dict(COLUMNS).get(self.sort_column, self.sort_column.removeprefix("v:")).strip() \
                or self.sort_column    # the mark column: 'mark', a varied setting: its name
            parts.append((f"sorted by {label}{' ↓' if self.sort_reverse else ' ↑'}", ""))
        return parts

    def update_current(self) -> None:
        """One or two lines about the highlighted run: settings, result against the paper, error, next step."""
        widget = self.query_one("#current", Static)
        if self.grouped:
            widget.update(self._group_line())
            return
        run_id = self.query_one(RunsTable).current_id
        info = self.app.watcher.infos.get(run_id) if run_id else None
        if info is None:
            widget.update("")
            return
        text = Text()
        text.append(info.id, style="bold")
        text.append("  ")
        text.append(info.state, style=state_style(info.state))
        if info.config is not None:
            cfg = info.config
            text.append(f"  {cfg.label()} {cfg.schedule} seed {cfg.seed} · {cfg.dataset} · "
                        f"{epochs_text(info.epochs_done, info.total_epochs)} epochs done")
            if info.final_test_err is not None:
                text.append(f" · test {pct(info.final_test_err)} (best {pct(info.best_test_err)}")
                text.append(f", paper {pct(info.paper_err)})" if info.paper_err is not None else ")")
            if info.duration_s:
                text.append(f" · {duration(info.duration_s)}")
        hint = state_hint(self.app, info, "g shows the queue and the devices")
        if info.error:
            text.append("\n" + info.error, style=state_style(info.state, "red"))
        elif hint:
            text.append(f"  ({hint})", style="dim")
        widget.update(text)

    def _group_line(self) -> Text:
        group = self.query_one(GroupsTable).current_group
        if group is None:
            return Text("")
        text = Text(group.name, style="bold")
        text.append(f"  seeds {seeds_text(group.seeds)} · final test error best {pct(group.best)}, mean ± std "
                    f"{mean_std_text(group)}% over {group.n} run(s)")
        if group.partial:
            text.append(f" · {group.partial} not finished", style="yellow")
        text.append("\n" + ", ".join(i.id for i in group.runs), style="dim")
        text.append("  (enter: compare the seeds, space: mark them all)", style="dim")
        return text

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.update_current()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if isinstance(event.data_table, GroupsTable):
            return                      # groups keep the paper's order: plain, A, B, then depth
        key = str(event.column_key.value)
        if self.sort_column == key:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = key, False
        self.refresh_table()

    # -- actions -------------------------------------------------------------------------------------------------------
    @property
    def current_id(self) -> str | None:
        """The highlighted run; none in the group view (stop, resume, delete act on single runs)."""
        return None if self.grouped else self.query_one(RunsTable).current_id

    def action_open(self) -> None:
        if self.grouped:
            group = self.query_one(GroupsTable).current_group
            if group is not None and len(group.runs) > 1:
                self.app.open_compare([i.id for i in group.runs])
            elif group is not None:
                self.app.open_run(group.runs[0].id)
            return
        run_id = self.current_id
        if run_id is None:
            return
        self.app.open_run(run_id)

    def action_new_run(self) -> None:
        if isinstance(self.focused, Input):
            raise SkipAction()          # an n typed into the filter box
        self.app.open_new_run()

    def action_queue(self) -> None:
        self.app.open_queue()

    def action_study(self) -> None:
        """The study of the highlighted run (a trial or a confirmed run), else the folder's one study."""
        info = self.app.watcher.infos.get(self.current_id or "")
        name = info.config.study if info is not None and info.config is not None else ""
        names = sorted({i.config.study for i in self.app.watcher.infos.values() if i.config and i.config.study})
        if not name and len(names) == 1:
            name = names[0]
        if not name:
            self.notify("highlight a trial's run (or start a study: tui_app.py study NAME --space ... --val-split N)"
                        if names else "no study here; start one: tui_app.py study NAME --space ... --val-split N",
                        timeout=6)
            return
        self.app.open_study(name)

    def action_mark(self) -> None:
        if self.grouped:
            group = self.query_one(GroupsTable).current_group
            ids = {i.id for i in group.runs} if group is not None else set()
            if ids <= self.app.marked:
                self.app.marked.difference_update(ids)
            else:
                self.app.marked.update(ids)
            self.refresh_table()
            groups = self.query_one(GroupsTable)
            if groups.cursor_row < groups.row_count - 1:     # as in the runs view: on to the next row
                groups.move_cursor(row=groups.cursor_row + 1)
            return
        run_id = self.current_id
        if run_id is None:
            return
        marked = self.app.marked
        marked.symmetric_difference_update({run_id})
        self.refresh_table()
        table = self.query_one(RunsTable)
        if table.cursor_row < table.row_count - 1:
            table.move_cursor(row=table.cursor_row + 1)

    def action_clear_marks(self) -> None:
        if self.app.marked:
            self.notify(f"cleared {len(self.app.marked)} mark(s)", timeout=3)
        self.app.marked.clear()
        self.refresh_table()

    def action_report(self) -> None:
        """e: the report of the marked runs, else of the runs the table shows (the filter applies)."""
        marked = [i.id for i in self.app.watcher.ordered() if i.id in self.app.marked]
        ids = marked or [i.id for i in self.visible_infos()]
        if not ids:
            self.notify("no runs to report on", severity="warning")
            return
        export_report(self, ids)

    def action_compare(self) -> None:
        ids = [i.id for i in self.app.watcher.ordered() if i.id in self.app.marked]
        if len(ids) < 2:
            self.notify("mark two or more runs with space, then press c", severity="warning")
            return
        self.app.open_compare(ids)

    def action_stop(self) -> None:
        self.app.confirm_stop(self.current_id)

    def action_pause(self) -> None:
        self.app.toggle_pause(self.current_id)

    def action_resume(self) -> None:
        if self.app.resume_run(self.current_id, where="auto"):
            self.app.poll_runs()

    def action_delete(self) -> None:
        self.app.confirm_delete(self.current_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The seed groups act on groups (open, mark, compare): the keys of one run leave the footer there, and so do
        o and O (the groups keep the paper's order: plain, A, B, then depth)."""
        return not (self.grouped and action in ("stop", "pause", "resume", "delete", "cycle_sort", "reverse_sort"))

    def action_toggle_groups(self) -> None:
        self.grouped = not self.grouped
        self.refresh_bindings()
        self.refresh_table()
        self.set_focus(self.query_one(GroupsTable) if self.grouped else self.query_one(RunsTable))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        self.set_focus(box)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display or self.filter_text:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.refresh_table()
            self.set_focus(self.query_one(GroupsTable) if self.grouped else self.query_one(RunsTable))

    def action_cycle_sort(self) -> None:
        keys = self.query_one(RunsTable).column_keys()
        self.sort_column = keys[(keys.index(self.sort_column) + 1) % len(keys)] if self.sort_column else "id"
        self.sort_reverse = False
        self.refresh_table()

    def action_reverse_sort(self) -> None:
        if isinstance(self.focused, Input):
            raise SkipAction()          # an O typed into the filter box
        if self.sort_column is None:
            self.sort_column = "id"
        else:
            self.sort_reverse = not self.sort_reverse
        self.refresh_table()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.refresh_table()
