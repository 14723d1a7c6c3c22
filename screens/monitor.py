"""Monitor: one run while it trains, followed through its folder (in this app or in any other process).

Everything shown comes from the run folder (status.json, epochs.jsonl, steps.jsonl, events.log); for runs in this
app the trainer's latest Progress event, when newer, makes the bars move between status.json heartbeats.

A run launched as part of a grid hands over to the grid's next run when it ends (``f`` pins the monitor to it).
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Static

from core.store.runs import ACTIVE, RunInfo
from core.util.formatting import decimals, devices_text, duration, is_number, mem, num, pct, rate, state_style

from .run_files import FollowsFiles, RunFiles
from .widgets.curve_plot import MARKERS, PALETTE, CurvePlot, Series, run_series
from .widgets.footer import Footer
from .widgets.resume import RestyleWhenChanged
from .widgets.run_keys import run_key_applies
from .widgets.sized_table import SizedTable
from .widgets.state_text import STATE_HINTS, phase_text, state_text

BAR_WIDTH = 30


def bar_line(label: str, done: int, total: int, count: str, width: int = BAR_WIDTH) -> Text:
    """'epoch 2/15    ━━━━━━━━━━──────────  12/40 it': filled and empty cells differ without colour."""
    filled = int(width * min(1.0, done / total)) if total else 0
    text = Text(f"{label:<14}")
    text.append("━" * filled, style="green")
    text.append("─" * (width - filled), style="dim")
    text.append(f"  {count}")
    return text


def position(info: RunInfo, live) -> tuple[int, int, int, int, int]:
    """(epoch in progress 1-based, iterations done in it, iterations per epoch, step, total steps), counted from the
    step alone, so the epoch bar and its count always agree (a Progress event from the end of the previous epoch
    once drew a full bar over '0/40 it')."""
    status = info.status
    ipe = int(status.get("iters_per_epoch") or (live.iters_per_epoch if live else 0) or 0)
    step = live.step if live else info.step
    total_steps = (live.total_steps if live else info.total_steps) or 0
    total_epochs = info.total_epochs or 0
    done = info.epochs_done
    epoch_no = min(done + 1, total_epochs) if total_epochs else done + 1
    in_epoch = min(max(0, step - (epoch_no - 1) * ipe), ipe) if ipe else 0
    return epoch_no, in_epoch, ipe, step, total_steps


class MonitorScreen(FollowsFiles, RestyleWhenChanged, Screen):
    CSS_PATH = "monitor.tcss"
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("p", "pause", "Pause"),
        Binding("p", "continue", "Continue"),        # instead of Pause on a paused run (run_keys)
        Binding("r", "resume", "Resume"),
        Binding("i", "detail", "Detail"),
        Binding("f", "pin", "Pin/follow", tooltip="Follow the grid's next run when this one ends, or stay here"),
        Binding("escape,backspace", "back", "Back", key_display="⌫/esc"),   # backspace: no escape-sequence wait
    ]
    HELP_TITLE = "monitor"

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self.follow = True                    # hand over to the grid's next run when this one ends
        self._keys_for: tuple = ()              # what the footer's keys were last worked out for
        self._epochs_shown = -1

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="epoch-row", classes="bar-row")
        yield Static(id="run-row", classes="bar-row")
        yield Static(id="stats")
        with Horizontal(id="charts"):
            yield CurvePlot("training loss", unit="", id="loss-plot")
            yield CurvePlot("error %", id="err-plot")
        yield SizedTable(id="epochs", cursor_type="row", zebra_stripes=True)
        yield Static(id="log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#epochs", DataTable)
        for key, label in (("epoch", "epoch"), ("train_loss", "train loss"), ("train_err", "train err%"),
                           ("test_loss", "test loss"), ("test_err", "test err%"), ("lr", "lr"),
                           ("seconds", "time"), ("images_per_s", "img/s"), ("peak_mem_bytes", "peak mem")):
            table.add_column(label, key=key)
        self._watch(self.run_id)
        self.app.runs_changed_signal.subscribe(self, self.runs_changed)
        self.refresh_view()

    def _watch(self, run_id: str) -> None:
        self.run_id = run_id
        self.follow_runs([run_id])                # its curves, epochs, events: read by the poller's thread
        self.query_one("#epochs", DataTable).clear()
        self._epochs_shown = 0

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def runs_changed(self, changed: set[str]) -> None:
        self.refresh_view()

    # -- the grid ------------------------------------------------------------------------------------------------------
    def grid(self) -> list[str]:
        return self.app.grids.get(self.run_id, [self.run_id])

    def _follow_grid(self, info: RunInfo) -> None:
        """Follow the grid to the run that trains: when this run has ended, or waits while another run of its grid
        has started, watch the first of the grid's runs that trains now; when none trains, the first that waits
        (in this app's queue or the folder's), whose title says where it waits. A waiting run is never skipped as if
        it had ended (the scheduler's queue is not this app's)."""
        if not self.follow or info.state in ACTIVE:
            return
        grid = self.grid()
        states = {other: getattr(self.app.watcher.infos.get(other), "state", None) for other in grid}
        training = [other for other in grid if other != self.run_id and states[other] in ACTIVE]
        waiting_here = info.state == "queued" or self.app.queue_position(self.run_id) is not None
        if training:
            self._follow_to(info, training[0])
        elif not waiting_here:
            later = grid[grid.index(self.run_id) + 1:]
            nxt = next((other for other in later if states[other] == "queued"), None)
            if nxt is not None:
                self._follow_to(info, nxt)

    def _follow_to(self, info: RunInfo, other: str) -> None:
        if info.state != "queued" and self.run_id not in self.app.ended_here:   # else the app's toast said it
            self.notify(f"{self.run_id} {info.state}; following {other} (f pins the monitor to a run)", timeout=5)
        self._watch(other)

    # -- drawing -------------------------------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only the keys that apply to the run now are shown and run (see run_keys); f only for a grid."""
        if action == "pin":
            return len(self.grid()) > 1
        return run_key_applies(self.app, self.run_id, action)

    def refresh_view(self) -> None:
        info = self.app.watcher.infos.get(self.run_id)
        if info is not None:
            self._follow_grid(info)
            info = self.app.watcher.infos.get(self.run_id)
        if info is None:
            self.query_one("#title", Static).update(Text(f"{self.run_id}: this run no longer exists", style="red"))
            return
        keys = (self.run_id, info.state, self.app.is_in_app(self.run_id), len(self.grid()))
        if keys != self._keys_for:
            self._keys_for = keys
            self.refresh_bindings()                   # the footer shows the keys that apply now
        live = self.app.live.get(self.run_id)
        if live is not None and live.step < info.step:
            live = None
        epoch_no, in_epoch, ipe, step, total_steps = position(info, live)
        self.query_one("#title", Static).update(self._title(info))
        self.query_one("#epoch-row", Static).update(
            bar_line(f"epoch {epoch_no}/{info.total_epochs or '?'}", in_epoch, ipe, f"{in_epoch}/{ipe or '?'} it"))
        eta = self._eta(info, live, step, total_steps)
        self.query_one("#run-row", Static).update(bar_line(
            "run", step, total_steps, f"{step}/{total_steps or '?'} it" + (f"  ETA {duration(eta)}" if eta else "")))
        files = self.app.run_files(self.run_id)
        newest = self._update_charts(info, files)       # the newest logged window: the stats line names it too
        self.query_one("#stats", Static).update(self._stats(info, live, newest))
        self._update_epochs(files)
        self._update_log(files)

    def _title(self, info: RunInfo) -> Text:
        title = Text.assemble(("Monitor ", "bold"), (self.run_id, "bold"), "  ")
        if info.config is not None:
            title.append(info.config.label() + f" {info.config.schedule}  ")
        title.append_text(state_text(info.state))
        if info.phase:                                  # compiling before the first step (and a stop that waits)
            title.append(f" ({phase_text(self.app, info)})", style="yellow")
        if info.state in ACTIVE:
            where = "this app" if self.app.is_in_app(self.run_id) else f"pid {info.status.get('pid', '?')}"
            title.append(f"  ({where})", style="dim")
        grid = self.grid()
        if len(grid) > 1:
            title.append(f"  grid {grid.index(self.run_id) + 1}/{len(grid)}"
                         + (", following" if self.follow else ", pinned"), style="dim")
        return title

    def _eta(self, info: RunInfo, live, step: int, total: int) -> float | None:
        if info.state != "running" or not total:      # paused: no time that comes closer
            return None
        if live is not None and live.eta_s is not None:
            return live.eta_s
        if info.status.get("eta_s") is not None:  # written by the trainer's heartbeat (any process)
            return float(info.status["eta_s"])
        ips = info.images_per_s
        if ips and info.config is not None:
            return (total - step) * info.config.batch_size / ips
        elapsed = info.duration_s
        return elapsed / step * (total - step) if elapsed and step else None

    def _stats(self, info: RunInfo, live, newest: dict | None) -> Text:
        s = info.status
        if info.state not in ACTIVE:
            live = None          # the last Progress event is older than what the trainer wrote when it ended
        ips = (live.images_per_s if live and live.images_per_s else None) or info.images_per_s
        lr = live.lr if live else s.get("lr")
        loss = (live.loss if live and live.loss is not None else None) or s.get("last_loss")
        err = (live.err if live and live.err is not None else None) or s.get("last_err")
        if newest is not None:   # the same number as the loss chart's title, never older
            loss, err = newest["loss"], newest.get("err", err)
        parts = [f"{rate(ips)} img/s", f"lr {num(lr)}", f"loss {num(loss)}", f"train err {pct(err)}",
                 devices_text(s) if s.get("device") else (info.config.device if info.config else "-"),
                 f"mem {mem(s.get('peak_mem_bytes'))}",
                 f"elapsed {duration(live.elapsed_s if live else info.duration_s)}"]
        text = Text("  ·  ".join(parts))
        position_here = self.app.queue_position(self.run_id)
        in_queue = self.app.scheduler_position(self.run_id)
        if position_here == 0 and info.state == "queued":
            text.append("\nstarting in this app: loading the data and building the model", style="dim")
        elif position_here and info.state == "queued":
            text.append(f"\nqueued in this app: it starts after {position_here} run(s) before it finish",
                        style="dim")
        elif in_queue and info.state == "queued":
            text.append(f"\nin the queue at position {in_queue}: the scheduler starts it when a device slot frees",
                        style="dim")
        elif info.error:
            text.append("\n" + info.error, style=state_style(info.state, "red"))
        elif info.state in STATE_HINTS:
            text.append(f"\n{info.state}: {STATE_HINTS[info.state]}", style="dim")
        return text

    def _update_charts(self, info: RunInfo, files: RunFiles) -> dict | None:
        """The training loss of every logged window, and the error: training (dotted) and test at the epoch ends
        (a line with markers); values that are not finite (a diverged run's NaN) are left out. Returns the newest
        logged window (steps.jsonl row) with a loss, or None."""
        rows = [r for r in files.steps if is_number(r.get("loss")) and "step" in r]
        loss_plot, err_plot = self.query_one("#loss-plot", CurvePlot), self.query_one("#err-plot", CurvePlot)
        loss_plot.series = [Series("training loss", [r["step"] for r in rows], [r["loss"] for r in rows],
                                   color=PALETTE[0])]
        losses = [r["loss"] for r in rows]
        loss_plot.title = (f"training loss {num(losses[-1])} (lowest {num(min(losses))})" if losses
                           else "training loss: after the first logged iterations")
        series = run_series("", files.steps, files.epochs, PALETTE[1], marker=MARKERS[0])
        err_plot.series = series
        xmax = info.total_steps or None
        loss_plot.xmax = err_plot.xmax = xmax
        errs = [e["test_err"] for e in files.epochs if is_number(e.get("test_err"))]
        paper = f", paper {pct(info.paper_err, unit=False)}" if info.paper_err is not None else ""
        err_plot.title = (f"error % · test {MARKERS[0]} {pct(errs[-1], unit=False)} (best {pct(min(errs), unit=False)}"
                          f"{paper})" if errs
                          else f"error % · training ⠒⠒ · test {MARKERS[0]} at each epoch end")
        return rows[-1] if rows else None

    def _update_epochs(self, files: RunFiles) -> None:
        table = self.query_one("#epochs", DataTable)
        rows = files.epochs
        if len(rows) < self._epochs_shown:
            table.clear()
            self._epochs_shown = 0
        start = max(self._epochs_shown, 0)
        for row in rows[start:]:
            table.add_row(
                Text(str(row.get("epoch", "?")), justify="right"),
                Text(decimals(row.get("train_loss"), 4), justify="right"),
                Text(pct(row.get("train_err"), unit=False), justify="right"),
                Text(decimals(row.get("test_loss"), 4), justify="right"),
                Text(pct(row.get("test_err"), unit=False), justify="right"),
                Text(num(row.get("lr")), justify="right"),
                Text(duration(row.get("seconds")), justify="right"),
                Text(rate(row.get("images_per_s")), justify="right"),
                Text(mem(row.get("peak_mem_bytes")), justify="right"),
            )
        if len(rows) > start:
            table.move_cursor(row=len(rows) - 1, animate=False)
        self._epochs_shown = len(rows)

    def _update_log(self, files: RunFiles) -> None:
        lines = files.events[-4:] if files.read else ["..."]
        self.query_one("#log", Static).update(Text("\n".join(lines) or "(events.log is empty)", style="dim",
                                                   no_wrap=True, overflow="ellipsis"))

    # -- actions -------------------------------------------------------------------------------------------------------
    def action_stop(self) -> None:
        self.app.confirm_stop(self.run_id)

    def action_pause(self) -> None:
        self.app.toggle_pause(self.run_id)

    def action_continue(self) -> None:
        self.app.toggle_pause(self.run_id)

    def action_resume(self) -> None:
        if self.app.resume_run(self.run_id, where="auto"):
            self.app.poll_runs()

    def action_pin(self) -> None:
        self.follow = not self.follow
        self.notify(f"following the grid: {self.run_id}'s end hands over to the next run" if self.follow
                    else f"pinned to {self.run_id}", timeout=3)
        self.refresh_view()

    def action_detail(self) -> None:
        self.app.open_run(self.run_id, "detail")     # covers the monitor: esc comes back here

    def action_back(self) -> None:
        self.app.pop_screen()
