"""Monitor: one run while it trains, followed through its folder (in this app or in any other process).

Everything shown comes from the run folder (status.json, epochs.jsonl, steps.jsonl, events.log); for runs in this
app the trainer's latest Progress event, when newer, makes the bars move between status.json heartbeats.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, ProgressBar, Sparkline, Static

from core.formatting import devices_text, duration, is_number, mem, num, pct, rate, state_style
from core.runs import ACTIVE, Run, RunInfo

from .watch import JsonlTail
from .widgets.formatting import STATE_HINTS, state_text


class MonitorScreen(Screen):
    CSS_PATH = "monitor.tcss"
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("p", "pause", "Pause"),
        Binding("i", "detail", "Detail"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self._steps: JsonlTail | None = None
        self._epochs_shown = -1

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal(classes="bar-row"):
            yield Label("epoch", id="epoch-label", classes="bar-label")
            yield ProgressBar(id="epoch-bar", show_eta=False)
            yield Label(id="epoch-count", classes="bar-count")
        with Horizontal(classes="bar-row"):
            yield Label("run", id="run-label", classes="bar-label")
            yield ProgressBar(id="run-bar", show_eta=False)
            yield Label(id="run-count", classes="bar-count")
        yield Static(id="stats")
        with Horizontal(id="sparks"):
            with Vertical():
                yield Label("training loss", id="loss-label", classes="spark-label")
                yield Sparkline(id="loss-spark")
            with Vertical():
                yield Label("test error per epoch", id="err-label", classes="spark-label")
                yield Sparkline(id="err-spark")
        yield DataTable(id="epochs", cursor_type="row", zebra_stripes=True)
        yield Static(id="log")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#epochs", DataTable)
        for key, label in (("epoch", "epoch"), ("train_loss", "train loss"), ("train_err", "train err%"),
                           ("test_loss", "test loss"), ("test_err", "test err%"), ("lr", "lr"),
                           ("seconds", "time"), ("images_per_s", "img/s"), ("peak_mem_bytes", "peak mem")):
            table.add_column(label, key=key)
        self._steps = JsonlTail(self.app.store.root / self.run_id / "steps.jsonl")
        self.app.runs_changed_signal.subscribe(self, self.runs_changed)
        self.refresh_view()
        self.call_after_refresh(self.refresh_view)  # the sparkline's width is known after the first layout

    def on_screen_resume(self) -> None:
        self.refresh_view()

    def runs_changed(self, changed: set[str]) -> None:
        self.refresh_view()

    # -- drawing -------------------------------------------------------------------------------------------------------
    def refresh_view(self) -> None:
        info = self.app.watcher.infos.get(self.run_id)
        if info is None:
            self.query_one("#title", Static).update(Text(f"{self.run_id}: this run no longer exists", style="red"))
            return
        status = info.status
        live = self.app.live.get(self.run_id)
        if live is not None and live.step < info.step:
            live = None
        ipe = int(status.get("iters_per_epoch") or (live.iters_per_epoch if live else 0) or 0)
        step = live.step if live else info.step
        total_steps = (live.total_steps if live else info.total_steps) or 0
        epochs_done = info.epochs_done
        total_epochs = info.total_epochs or 0
        in_epoch = (live.iter_in_epoch if live else max(0, step - epochs_done * ipe)) if ipe else 0

        title = Text.assemble(("Monitor ", "bold"), (self.run_id, "bold"), "  ")
        if info.config is not None:
            title.append(info.config.label() + f" {info.config.schedule}  ")
        title.append_text(state_text(info.state))
        where = "this app" if self.app.is_in_app(self.run_id) else ("pid %s" % status.get("pid", "?"))
        if info.state in ACTIVE:
            title.append(f"  ({where})", style="dim")
        self.query_one("#title", Static).update(title)

        epoch_no = min(epochs_done + 1, total_epochs) if total_epochs else epochs_done + 1
        self.query_one("#epoch-label", Label).update(f"epoch {epoch_no}/{total_epochs or '?'}")
        self.query_one("#epoch-bar", ProgressBar).update(total=ipe or None, progress=min(in_epoch, ipe) if ipe else 0)
        self.query_one("#epoch-count", Label).update(f"{in_epoch}/{ipe or '?'} it")
        self.query_one("#run-bar", ProgressBar).update(total=total_steps or None, progress=step)
        eta = self._eta(info, live, step, total_steps)
        self.query_one("#run-count", Label).update(
            f"{step}/{total_steps or '?'} it" + (f"  ETA {duration(eta)}" if eta is not None else ""))
        self.query_one("#stats", Static).update(self._stats(info, live))
        self._update_sparks(info)
        self._update_epochs(info)
        self._update_log(info)

    def _eta(self, info: RunInfo, live, step: int, total: int) -> float | None:
        if info.state not in ACTIVE or not total:
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

    def _stats(self, info: RunInfo, live) -> Text:
        s = info.status
        ips = (live.images_per_s if live and live.images_per_s else None) or info.images_per_s
        lr = live.lr if live else s.get("lr")
        loss = (live.loss if live and live.loss is not None else None) or s.get("last_loss")
        err = (live.err if live and live.err is not None else None) or s.get("last_err")
        parts = [f"{rate(ips)} img/s", f"lr {num(lr)}", f"loss {num(loss)}", f"train err {pct(err)}",
                 devices_text(s) if s.get("device") else (info.config.device if info.config else "-"),
                 f"mem {mem(s.get('peak_mem_bytes'))}",
                 f"elapsed {duration(live.elapsed_s if live else info.duration_s)}"]
        text = Text("  ·  ".join(parts))
        position = self.app.queue_position(self.run_id)
        in_queue = self.app.scheduler_position(self.run_id)
        if position and info.state == "queued":
            text.append(f"\nqueued in this app: it starts after {position} run(s) before it finish", style="dim")
        elif in_queue and info.state == "queued":
            text.append(f"\nin the queue at position {in_queue}: the scheduler starts it when a device slot frees",
                        style="dim")
        elif info.error:
            text.append("\n" + info.error, style=state_style(info.state, "red"))
        elif info.state in STATE_HINTS:
            text.append(f"\n{info.state}: {STATE_HINTS[info.state]}", style="dim")
        return text

    def _update_sparks(self, info: RunInfo) -> None:
        """Textual's Sparklines (2 rows, min..max scaled) of the last losses and test errors, as many as there are
        columns; values that are not finite (a diverged run's NaN) are left out."""
        assert self._steps is not None
        self._steps.read()
        loss_spark, err_spark = self.query_one("#loss-spark", Sparkline), self.query_one("#err-spark", Sparkline)
        width = max(8, loss_spark.size.width or 40)
        losses = [r["loss"] for r in self._steps.rows[-width:] if is_number(r.get("loss"))]
        loss_spark.data = losses
        loss_spark.visible = bool(losses)          # an empty Sparkline draws a flat line: no data is no line
        if losses:
            self.query_one("#loss-label", Label).update(f"loss {num(losses[-1])} (min {num(min(losses))}), "
                                                         f"last {len(losses)} points")
        errs = [e["test_err"] for e in info.epochs if is_number(e.get("test_err"))]
        err_spark.data, err_spark.visible = errs[-max(8, err_spark.size.width or 40):], bool(errs)
        if errs:
            paper = f", paper {pct(info.paper_err)}" if info.paper_err is not None else ""
            self.query_one("#err-label", Label).update(f"test err {pct(errs[-1])} (best {pct(min(errs))}{paper})")

    def _update_epochs(self, info: RunInfo) -> None:
        table = self.query_one("#epochs", DataTable)
        rows = info.epochs
        if len(rows) < self._epochs_shown:
            table.clear()
            self._epochs_shown = 0
        start = max(self._epochs_shown, 0)
        for row in rows[start:]:
            table.add_row(
                Text(str(row.get("epoch", "?")), justify="right"),
                Text(num(row.get("train_loss")), justify="right"),
                Text(pct(row.get("train_err"), unit=False), justify="right"),
                Text(num(row.get("test_loss")), justify="right"),
                Text(pct(row.get("test_err"), unit=False), justify="right"),
                Text(num(row.get("lr")), justify="right"),
                Text(duration(row.get("seconds")), justify="right"),
                Text(rate(row.get("images_per_s")), justify="right"),
                Text(mem(row.get("peak_mem_bytes")), justify="right"),
            )
        if len(rows) > start:
            table.move_cursor(row=len(rows) - 1, animate=False)
        self._epochs_shown = len(rows)

    def _update_log(self, info: RunInfo) -> None:
        lines = Run(info.path).read_events(tail=4)
        self.query_one("#log", Static).update(Text("\n".join(lines) or "(events.log is empty)", style="dim",
                                                   no_wrap=True, overflow="ellipsis"))

    # -- actions -------------------------------------------------------------------------------------------------------
    def action_stop(self) -> None:
        self.app.confirm_stop(self.run_id)

    def action_pause(self) -> None:
        self.app.toggle_pause(self.run_id)

    def action_detail(self) -> None:
        self.app.open_run(self.run_id, "detail", replace=True)

    def action_back(self) -> None:
        self.app.pop_screen()

