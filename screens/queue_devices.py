"""Queue & devices: the queued runs in the order they start, the runs training with their device and slot, the
scheduler serving this runs folder, and the devices panel. shift+up/down reorder a queued run, x takes it out of
the queue (it stays as a stopped run). Everything is read from the runs folder (core.serve.queue, core.serve.scheduler),
so
runs queued from the CLI or another app show up too."""
from __future__ import annotations

from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from core.serve import queue as Q
from core.serve import scheduler_control as S
from core.store.reader import escape_controls
from core.store.runs import RunError, RunLockedError
from core.util.files import error_text
from core.util.formatting import epochs_text, state_style

from .widgets.devices import DevicesPanel
from .widgets.footer import Footer
from .widgets.resume import RestyleWhenChanged
from .widgets.sized_table import SizedTable
from .widgets.worker_errors import TellWorkerErrors


class QueueTable(SizedTable):
    """The queue's table, whose enter key (open the run) is shown in the footer."""

    BINDINGS = [Binding("enter", "select_cursor", "Open", show=True)]

COLUMNS = (("pos", "pos"), ("id", "run"), ("state", "state"), ("device", "device"), ("slot", "slot"),
           ("epochs", "epochs"), ("label", "settings"))


class QueueScreen(TellWorkerErrors, RestyleWhenChanged, Screen):
    CSS_PATH = "queue_devices.tcss"
    BINDINGS = [
        Binding("shift+up", "move(-1)", "Up", key_display="⇧↑", tooltip="Move the queued run up: it starts sooner"),
        Binding("shift+down", "move(1)", "Down", key_display="⇧↓",
                tooltip="Move the queued run down: it starts later"),
        Binding("x", "remove", "Remove",
                tooltip="Take the run out of the queue (it stays, as a stopped run: r resumes it)"),
        Binding("n", "new_run", "New run", show=False),   # the hint of an empty queue names it
        Binding("escape,backspace", "back", "Back", key_display="⌫/esc"),   # backspace: no escape-sequence wait
    ]
    KEYS_HELP = [("enter", "open the run: its monitor while it trains, its detail otherwise"),
                 ("↑ ↓", "move the cursor")]

    def __init__(self) -> None:
        super().__init__(id="queue")
        self.rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield DevicesPanel(self.app.store, id="devices")
        table = QueueTable(id="queue-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static(id="hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.runs_changed_signal.subscribe(self, self.runs_changed)
        self.refresh_rows()
        self.query_one(DataTable).focus()

    def runs_changed(self, changed: set[str]) -> None:
        self.refresh_rows()

    # -- reading -----------------------------------------------------------------------------------------------------
    def refresh_rows(self, keep: str | None = None) -> None:
        """The queue's entries and the scheduler's state read in a thread (they are files of the runs folder)."""
        self._read_rows(list(self.app.watcher.infos.values()), keep)

    @work(thread=True, exclusive=True, group="queue-rows", exit_on_error=False, description="reading the queue")
    def _read_rows(self, infos: list, keep: str | None) -> None:
        store = self.app.store
        rows, state = Q.queue_rows(store, infos), S.read_state(store.root)
        try:
            self.app.call_from_thread(self._show_rows, rows, state, keep)
        except RuntimeError:            # the app is closing
            pass

    def _show_rows(self, rows: list[dict], state: dict | None, keep: str | None) -> None:
        if not self.is_attached:
            return
        self.rows = rows
        title = Text.assemble(("Queue & devices", "bold"), "  ")
        if state is None:
            title.append("no scheduler yet (launching into the queue starts one)", style="dim")  # fits 80 columns
        else:
            slots = state.get("slots", [])
            busy = sum(1 for s in slots if s.get("run"))
            title.append(escape_controls(f"scheduler pid {state.get('pid') or '?'}: {busy} of {len(slots)} slot(s) "
                                         f"busy ({', '.join(s['slot'] for s in slots)})"))     # names from a file
        self.query_one("#title", Static).update(title)
        table = self.query_one(DataTable)
        current = keep or self.current_id()
        table.clear()
        for r in self.rows:
            table.add_row(str(r["position"] or ""), r["id"], Text(r["state"], style=state_style(r["state"])),
                          escape_controls(r["device"] or "-"), escape_controls(r["slot"] or "-"),
                          epochs_text(r["epochs_done"], r["total_epochs"]),
                          r["label"] + (f" (retried {r['retries']}x)" if r["retries"] else ""), key=r["id"])
        if current is not None and current in {r["id"] for r in self.rows}:
            table.move_cursor(row=table.get_row_index(current))
        queued = sum(1 for r in self.rows if r["position"])
        self.query_one("#hint", Static).update(
            f"{queued} queued, {len(self.rows) - queued} starting or training" if self.rows else
            "nothing queued or training: launch runs into the queue from the new-run form (n) or with "
            "`tui_app.py queue add`")

    def current_id(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= table.row_count:
            return None
        return str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)

    def _current_queued(self) -> dict | None:
        run_id = self.current_id()
        row = next((r for r in self.rows if r["id"] == run_id), None)
        if row is None or not row["position"]:
            self.notify(f"{run_id} is not queued; only queued runs can be moved or removed" if row else
                        "nothing selected", severity="warning", timeout=4)
            return None
        return row

    # -- actions -----------------------------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        row = self._current_queued()
        if row is None:
            return
        run_id, root = row["id"], self.app.store.root

        def work() -> str | None:           # from where it is when its turn comes (keys pressed fast add up)
            try:
                ids = [q.run.id for q in Q.queued(self.app.store)]
                at = ids.index(run_id) + 1 if run_id in ids else row["position"]
                Q.move(self.app.store, run_id, max(1, at + delta))
            except (RunError, ValueError, OSError) as exc:
                return error_text(exc, root / run_id, "move it again")
            return None

        self.app.actions.do(work, partial(self._done, run_id), f"moving {run_id}")

    def action_remove(self) -> None:
        row = self._current_queued()
        if row is None:
            return
        run_id, root = row["id"], self.app.store.root

        def work() -> str | None:
            try:
                Q.remove(self.app.store, run_id)
            except RunLockedError as exc:
                return f"{exc}; stop it from the runs list instead"
            except (RunError, OSError) as exc:
                return f"cannot remove {run_id}: {error_text(exc, root / run_id)}"
            return None

        def removed(error: str | None) -> None:
            if error is None:
                self.notify(f"{run_id} left the queue; it stays as a stopped run (r resumes it, d deletes it)",
                            timeout=5)
            self._done(run_id, error)

        self.app.actions.do(work, removed, f"taking {run_id} out of the queue")

    def _done(self, run_id: str, error: str | None) -> None:
        if error is not None:
            self.notify(error, severity="warning" if "stop it from" in error else "error")
        if self.is_attached:
            self.refresh_rows(keep=run_id)
        self.app.poll_runs()

    @on(DataTable.RowSelected)
    def open_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.app.open_run(str(event.row_key.value))

    def action_new_run(self) -> None:
        self.app.open_new_run()

    def action_back(self) -> None:
        self.app.pop_screen()
