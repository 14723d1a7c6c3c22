"""A study (core/study): its trials with their settings, epochs, value and state, the best so far, and a chart of
the objective over trials (finished trials, and the best so far). Enter opens a trial's run. Opened from the runs
table with ``t`` on a trial's run (or on any run, when the folder holds one study). Read from the study's storage
(the runs folder's studies.db) and the runs' folders, in a thread: Optuna takes a moment to import."""
from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from core.util.formatting import state_style

from .widgets.curve_plot import CurvePlot, Series
from .widgets.footer import Footer
from .widgets.resume import RestyleWhenChanged
from .widgets.sized_table import SizedTable
from .widgets.worker_errors import TellWorkerErrors


class TrialsTable(SizedTable):
    BINDINGS = [Binding("enter", "select_cursor", "Open", show=True)]


COLUMNS = (("trial", "trial"), ("state", "state"), ("epochs", "epochs"), ("value", "value"), ("note", "rung"),
           ("params", "settings"), ("run", "run"))


def load_study(store, name: str) -> dict:
    """The study's summary (core/study/summary.py) from its storage (the folder's studies.db, or the one its `study
    --storage` remembered); raises LookupError when absent."""
    from core.study.spec import DB_FILE, load, storage_of
    from core.study.summary import summary

    url = storage_of(store.root, name)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise LookupError(f"no {DB_FILE} in {store.root}" if url.endswith(DB_FILE) else f"{url} is not there")
    study, spec = load(name, url)
    if study is None:
        raise LookupError(f"no study {name!r} in {url}")
    return summary(store, study, spec, url)


def value_text(t: dict) -> str:
    return " ".join(f"{v:.4g}" for v in t["values"]) if t["values"] else "-"


def objective_chart(data: dict) -> tuple[str, list[Series]]:
    """The chart's title and series: one objective over trials (each finished trial, and the best so far); two
    objectives as each other's axes (validation error against the second), the Pareto front drawn through its
    trials."""
    done = [t for t in data["trials"] if t["values"] and t["state"] == "complete"]
    objectives = data["spec"].get("objectives") or ["val_err"]
    if len(objectives) == 2:
        front = sorted((t["values"][1], t["values"][0]) for t in data["best"] if t.get("values"))
        title = f"{objectives[0]} vs {objectives[1]} (• trials, line: Pareto front)"
        if not done:
            return title, []
        return title, [Series("trials", [t["values"][1] for t in done], [t["values"][0] for t in done],
                              color="#1f77b4", marker="•", scatter=True),
                       Series("Pareto front", [x for x, _ in front], [y for _, y in front], color="#d62728")]
    title = "objective over trials (• finished, line: best so far)"
    if not done:
        return title, []
    best, line = math.inf, []
    for t in done:
        best = min(best, t["values"][0])
        line.append((t["number"], best))
    return title, [Series("finished", [t["number"] for t in done], [t["values"][0] for t in done], color="#1f77b4",
                          marker="•", sparse=False),
                   Series("best so far", [n for n, _ in line], [v for _, v in line], color="#d62728")]


class StudyScreen(TellWorkerErrors, RestyleWhenChanged, Screen):
    CSS_PATH = "study.tcss"
    BINDINGS = [Binding("escape,backspace", "back", "Back")]
    KEYS_HELP = [("enter", "open the trial's run"), ("↑ ↓", "move the cursor")]

    def __init__(self, name: str) -> None:
        super().__init__(id="study")
        self.study_name = name
        self.data: dict | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble((f"Study {self.study_name}", "bold"), "  reading its storage ..."),
                     id="study-title")
        yield Static(id="best")
        yield CurvePlot("objective over trials (• finished, line: best so far)", unit="", id="chart")
        table = TrialsTable(id="trials", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.app.runs_changed_signal.subscribe(self, lambda changed: changed and self.reload())
        self.query_one(DataTable).focus()
        self.reload()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def reload(self) -> None:
        try:
            data = load_study(self.app.store, self.study_name)
        except Exception as exc:  # noqa: BLE001 - a storage that cannot be read is a line on the screen
            self.app.call_from_thread(self.show_error, f"{type(exc).__name__}: {exc}")
            return
        self.app.call_from_thread(self.show, data)

    def show_error(self, message: str) -> None:
        self.query_one("#study-title", Static).update(Text.assemble((f"Study {self.study_name}", "bold"), "  ",
                                                                    (message, "red")))

    def show(self, data: dict) -> None:
        self.data = data
        spec = data["spec"]
        title = Text.assemble((f"Study {data['study']}", "bold"), f"  {len(data['trials'])} of {spec['trials']} "
                              f"trials · {spec['sampler']} · pruner {spec['pruner']} · rungs at "
                              f"{', '.join(map(str, data['rungs'])) or 'none'} · {data['epochs_trained']} epochs "
                              f"trained", style="")
        self.query_one("#study-title", Static).update(title)
        best = data["best"]
        self.query_one("#best", Static).update(
            Text("best: " + "; ".join(f"trial {b['number']} {' '.join(f'{v:.4g}' for v in b['values'])} "
                                      f"({', '.join(f'{k}={_short(v)}' for k, v in b['params'].items())})"
                                      for b in best[:3]) if best else "best: no finished trial yet",
                 style="bold green" if best else "dim"))
        self.draw_chart(data)
        self.fill_table(data)

    def draw_chart(self, data: dict) -> None:
        chart = self.query_one("#chart", CurvePlot)
        chart.title, chart.series = objective_chart(data)

    def fill_table(self, data: dict) -> None:
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        for t in data["trials"]:
            params = " ".join(f"{k}={_short(v)}" for k, v in t["params"].items())
            table.add_row(str(t["number"]), Text(t["state"], style=state_style(_run_state(t))),
                          f"{t['epochs']}/{data['spec']['base']['epochs']}", value_text(t), t["note"] or "",
                          params, t["run"] or "-", key=t["run"] or f"trial-{t['number']}")
        if data["trials"]:
            table.move_cursor(row=min(keep, len(data["trials"]) - 1))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = event.row_key.value
        if key and not key.startswith("trial-"):
            self.app.open_run(key)

    def action_back(self) -> None:
        self.app.pop_screen()


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _run_state(t: dict) -> str:
    return {"complete": "finished", "pruned": "stopped", "running": t.get("run_state") or "running"}.get(
        t["state"], "failed")
