"""Run detail: config, status, result against the paper, error curves, layer responses (Fig. 7), checkpoint;
resume, clone, delete; `e` writes the run's report (`tui_app.py report RUN`)."""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Static

from core.spec.archs import widths_text
from core.spec.config import ConfigError, RunConfig
from core.spec.field_help import GROUPS
from core.store.rules import delete_refusal, extend_refusal, needs_repair, offer_resume_refusal, resume_refusal
from core.store.runs import RunError, RunInfo, extend_run
from core.util.files import error_text
from core.util.formatting import (
    count,
    devices_text,
    duration,
    epochs_text,
    is_number,
    mem,
    model_name,
    pct,
    slurm_text,
    state_style,
)

from .run_files import FollowsFiles, RunFiles
from .widgets.chart_keys import CHART_BINDINGS, ChartKeys
from .widgets.curve_plot import PALETTE, CurvePlot, axis_title, legend, run_series
from .widgets.extend_dialog import ExtendScreen
from .widgets.footer import Footer
from .widgets.notes_dialog import NotesScreen
from .widgets.report_export import export_report
from .widgets.response_chart import response_chart
from .widgets.resume import RestyleWhenChanged
from .widgets.run_keys import run_key_applies
from .widgets.state_text import state_hint
from .widgets.worker_errors import TellWorkerErrors


class DetailScreen(FollowsFiles, ChartKeys, TellWorkerErrors, RestyleWhenChanged, Screen):
    CSS_PATH = "detail.tcss"
    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("p", "pause", "Pause"),
        Binding("p", "continue", "Continue"),        # instead of Pause on a paused run (run_keys)
        Binding("r", "resume", "Resume"),
        Binding("n", "clone", "Clone", priority=True),
        Binding("x", "extend", "Extend"),          # a finished run only (check_action)
        Binding("d", "delete", "Delete"),
        *CHART_BINDINGS,
        Binding("l", "layer_responses", "Layer resp."),
        Binding("e", "report", "Report"),
        Binding("t", "notes", "Tags/note"),
        Binding("escape,backspace", "back", "Back", key_display="⌫/esc"),   # backspace: no escape-sequence wait
    ]

    def __init__(self, run_id: str):
        super().__init__()
        self.run_id = run_id
        self._computing_responses = False
        self.report_folder = None
        self._keys_for: tuple = ()              # what the footer's keys were last worked out for
        self._pushed = False                    # on_mount drew it; the ScreenResume of its push need not again
        self._narrow: bool | None = None        # the plot's title was made for a terminal under 100 columns

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with VerticalScroll(id="body"):
            yield Static(id="summary")
            yield CurvePlot(id="plot")
            yield Static(id="legend")
            yield Static(id="responses")
            yield Static(id="config")
            yield Static(id="events")
        with Horizontal(id="actions"):
            yield Button("Resume here", id="resume", compact=True)
            yield Button("Resume in queue", id="resume-bg", compact=True)
            yield Button("Extend by more epochs  x", id="extend", compact=True)
            yield Button("Clone to new run", id="clone", compact=True)
            yield Button("Delete", id="delete", variant="error", compact=True)
        yield Footer(compact=True, show_command_palette=False)  # no room at 100 columns; ? names ^p

    def on_mount(self) -> None:
        self.app.runs_changed_signal.subscribe(self, self.runs_changed)
        self.follow_runs([self.run_id])               # its curves, events, checkpoint: read by the poller's thread
        self.refresh_view()
        self._pushed = True

    def on_screen_resume(self) -> None:
        if self._pushed:                         # the push itself (after on_mount, which drew it): not twice
            self._pushed = False
            return
        self.refresh_view()                      # back from a dialog (tags and note, extend ...)

    def on_resize(self) -> None:
        if (self.app.size.width < 100) != self._narrow:
            self.refresh_view()                  # the plot's title in short words below 100 columns

    def runs_changed(self, changed: set[str]) -> None:
        if self.run_id in changed:
            self.refresh_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only the keys that apply to the run now are shown and run (see run_keys); a folder without a readable
        config (damaged) has nothing to clone or report, no curves to rescale and no checkpoint to probe."""
        info = self.app.watcher.infos.get(self.run_id)
        if info is not None and action in ("clone", "report") and info.config is None:
            return False
        files = self.app.run_files(self.run_id)
        if info is not None and action in ("zoom", "log_scale") and not (files.epochs or files.steps):
            return False
        if info is not None and action == "layer_responses" and files.checkpoint is None:
            return False
        if action in ("extend", "clone", "report", "layer_responses", "notes") and info is None:
            return False                       # deleted meanwhile: nothing left to act on
        if action == "extend":
            return info is not None and extend_refusal(info) is None
        return run_key_applies(self.app, self.run_id, action)

    def _applies_now(self, info: RunInfo) -> tuple:
        """What the footer's keys depend on: when it changes, the footer is worked out again."""
        files = self.app.run_files(self.run_id)
        return (info.state, self.app.is_in_app(self.run_id), info.config is None, bool(files.epochs or files.steps),
                files.checkpoint is not None)

    def refresh_view(self) -> None:
        info = self.app.watcher.infos.get(self.run_id)
        title = self.query_one("#title", Static)
        if info is None:
            title.update(Text(f"{self.run_id}: this run no longer exists", style="red"))
            self.query_one("#actions").display = False     # nothing to resume, extend, clone or delete
            if self._keys_for != ("gone",):
                self._keys_for = ("gone",)
                self.refresh_bindings()
            return
        self.query_one("#actions").display = True
        title.update(Text.assemble(("Run ", "bold"), (self.run_id, "bold"), "  ",
                                   (info.state, state_style(info.state))))
        files = self.app.run_files(self.run_id)
        if self._applies_now(info) != self._keys_for:
            self._keys_for = self._applies_now(info)
            self.refresh_bindings()                   # the footer shows the keys that apply now
        self.query_one("#summary", Static).update(self._summary(info, files))
        series = run_series("", files.steps, files.epochs, PALETTE[0])
        series[0].label, series[1].label = "training error (batches)", "test error (epoch ends)"
        plot = self.query_one(CurvePlot)
        self._narrow = self.app.size.width < 100
        plot.title = axis_title("error % vs iterations", self.y_mode, self.y_log, narrow=self._narrow)
        plot.series = series
        plot.set_axis(self.y_mode, self.y_log)
        self.query_one("#legend", Static).update(legend(series))
        has_points = bool(files.steps or files.epochs)
        plot.display = has_points                      # nothing to draw before the first logged iterations
        self.query_one("#legend", Static).display = has_points
        self._show_responses(files)
        self.query_one("#config", Static).update(config_text(info.config) if info.config else Text(""))
        self.query_one("#events", Static).update(self._events(files))
        # a finished or damaged run is not offered a resume (a finished one is offered more epochs instead)
        refused = offer_resume_refusal(info)
        for button in ("#resume", "#resume-bg"):
            self.query_one(button, Button).display = refused is None or refused.kind not in ("finished", "damaged")
            self.query_one(button, Button).disabled = refused is not None or self.app.is_in_app(self.run_id)
        self.query_one("#extend", Button).display = extend_refusal(info) is None
        self.query_one("#delete", Button).disabled = delete_refusal(info, in_app=self.app.is_in_app(self.run_id)) \
            is not None
        self.query_one("#clone", Button).disabled = info.config is None

    def _summary(self, info: RunInfo, files: RunFiles) -> Text:
        t = Text()
        cfg = info.config
        if cfg is not None:
            t.append(f"{model_name(cfg.depth, cfg.shortcut, cfg.arch, cfg.width)}", style="bold")
            wide = widths_text(cfg.widths, cfg.stem_width)                 # 'w16', or '30/60/90 stem 64'
            wide = f"width {wide[1:]}" if wide.startswith("w") else f"widths {wide}"
            t.append(f"  shortcut {cfg.shortcut}, {wide} · {cfg.optimizer} lr {cfg.lr:g} "
                     f"{cfg.schedule} · batch {cfg.batch_size} · {cfg.dataset}")
            if cfg.max_train_images:
                t.append(f" ({cfg.max_train_images} training images)")
            t.append("\n")
        t.append("state ", style="dim")
        t.append(info.state, style=state_style(info.state))
        t.append(f" · {epochs_text(info.epochs_done, info.total_epochs)} epochs done · iteration {count(info.step)}/"
                 f"{count(info.total_steps)} · {duration(info.duration_s)}")
        if info.status.get("device"):
            t.append(f" · {devices_text(info.status)}")
        if info.job:
            t.append(f" · {slurm_text(info.job)}")
        hint = state_hint(self.app, info)
        if hint:
            t.append(f" ({hint})", style="dim")
        t.append("\n")
        if info.error:
            t.append(info.error + "\n", style=state_style(info.state, "red"))
        t.append("result ", style="dim")
        if info.final_test_err is None:
            t.append("no finished epoch yet")
        else:
            best_epoch = min((e for e in files.epochs if is_number(e.get("test_err"))),
                             key=lambda e: e["test_err"], default={}).get("epoch", "?")
            t.append(f"test error {pct(info.final_test_err)}", style="bold")
            t.append(f" (best {pct(info.best_test_err)} at epoch {best_epoch})")
            if info.paper_err is not None:
                diff = info.final_test_err - info.paper_err
                t.append(f" · paper {pct(info.paper_err)}: ")
                t.append(f"{abs(diff):.2f} points {'better' if diff < 0 else 'worse'}",
                         style="green" if diff < 0 else "yellow")
            elif cfg is not None:
                t.append(" · the paper reports no error for this depth/shortcut" if cfg.arch == "resnet" else
                         " · its paper reports no error for this net (PreAct-110/164/1001, WRN-16-8/28-10/40-4, "
                         "shortcut B)", style="dim")
        t.append("\n")
        t.append("checkpoint ", style="dim")
        if not files.read:
            t.append("...", style="dim")
        elif files.checkpoint is not None:
            t.append(f"checkpoint.pt ({mem(files.checkpoint)}) at epoch {info.epochs_done}, iteration {info.step}")
            if files.best is not None:
                t.append(f"; best.pt ({mem(files.best)})")
        elif needs_repair(info):    # not resumed as it is; resume --repair rebuilds from a checkpoint
            t.append("none, so resume --repair cannot recover it: mend the file named above, or delete the run")
        else:
            t.append("none yet (a fresh start when resumed)")
        notes = files.notes
        if notes["tags"] or notes["note"]:
            t.append("\ntags ", style="dim")
            t.append(" ".join(notes["tags"]) or "-", style="bold magenta")
            t.append("  note ", style="dim")
            t.append(notes["note"] or "-")
        t.append(f"\nfolder {info.path}", style="dim")
        return t

    def _show_responses(self, files: RunFiles) -> None:
        """The layer-response chart when layer_responses.json matches the checkpoint; else how to get it."""
        widget = self.query_one("#responses", Static)
        widget.display = files.checkpoint is not None
        if not widget.display:
            return
        data = files.responses
        if self._computing_responses:
            widget.update(Text("layer responses (Fig. 7): computing them over the test images from checkpoint.pt "
                               "(a few seconds on a GPU, longer on the CPU) ...", style="yellow"))
        elif data is None:
            widget.update(Text("layer responses (Fig. 7): press l to compute them from checkpoint.pt", style="dim"))
        else:
            widget.update(response_chart(data, max(20, self.size.width - 4)))

    def action_layer_responses(self) -> None:
        info = self.app.watcher.infos.get(self.run_id)
        if info is None or self.app.run_files(self.run_id).checkpoint is None:
            self.notify("no checkpoint yet: layer responses need a finished epoch", severity="warning")
            return
        app, path = self.app, info.path

        def work() -> None:
            from core.results.responses import layer_responses
            from core.store.runs import Run
            from core.util.errors import ReportError

            try:
                layer_responses(Run(path))
            except ReportError as exc:
                app.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            finally:
                self._computing_responses = False
            app.poller.ask(path.name)                 # read again: the chart arrives with the poller's reading
            app.call_from_thread(self.refresh_view)

        self._computing_responses = True            # the chart's place says so until it is done (it takes seconds)
        self.refresh_view()
        self.run_worker(work, thread=True, exclusive=True, group="responses", exit_on_error=False)

    def action_report(self) -> None:
        export_report(self, [self.run_id])

    def action_notes(self) -> None:
        """t: the run's tags and note (core/store/notes.py); the runs filter selects by them."""
        info = self.app.watcher.infos.get(self.run_id)
        if info is None:
            return
        files = self.app.run_files(self.run_id)
        current = files.notes if files.read else info.notes
        if current is None:                 # neither read yet: never a dialog that would save over them
            self.notify("its files are still being read; press t again in a moment", timeout=3)
            return
        self.app.push_screen(NotesScreen(self.run_id, info.path, current), lambda _: self.app.poll_runs(self.run_id))

    def _events(self, files: RunFiles) -> Text:
        lines = files.events[-8:] if files.read else ["..."]
        t = Text("events.log (last lines)\n", style="bold")
        t.append("\n".join(lines) or "(empty)", style="dim")
        return t

    # -- actions -------------------------------------------------------------------------------------------------------
    def action_resume(self) -> None:
        """r: where the run was launched (the queue for a run that went through it, else this app)."""
        if self.app.resume_run(self.run_id, where="auto"):
            self.app.open_run(self.run_id, "monitor", replace=True)

    @on(Button.Pressed, "#resume")
    def action_resume_here(self) -> None:
        if self.app.resume_run(self.run_id, where="app"):
            self.app.open_run(self.run_id, "monitor", replace=True)

    @on(Button.Pressed, "#resume-bg")
    def action_resume_background(self) -> None:
        if self.app.resume_run(self.run_id, where="queue"):
            self.app.open_run(self.run_id, "monitor", replace=True)

    @on(Button.Pressed, "#extend")
    def action_extend(self) -> None:
        """Train a finished run for more epochs: ask how many and where (screens/extend.py), extend it as
        `resume --epochs N` does (under its lock), then resume it from its checkpoint."""
        info = self.app.watcher.infos.get(self.run_id)
        refused = extend_refusal(info) if info is not None else None
        if info is None or refused is not None:
            self.notify(f"cannot extend {self.run_id}: it {refused.text if refused else 'is gone'}"
                        + (" (r resumes it)" if info is not None and resume_refusal(info) is None else ""),
                        severity="warning")
            return
        self.app.push_screen(ExtendScreen(self.run_id, info.epochs_done), self._extend)

    def _extend(self, answer: tuple[int, str] | None) -> None:
        if answer is None:
            return
        epochs, where = answer
        app, run_id = self.app, self.run_id

        def work() -> str | None:
            try:
                run = app.store.get(run_id)
                run.acquire_lock()
                try:
                    extend_run(run, epochs)
                    run.update_status(state="stopped", error=None)   # resumable from its checkpoint, not finished
                finally:
                    run.release_lock()
            except (RunError, ConfigError, OSError) as exc:
                return f"cannot extend {run_id}: {error_text(exc, app.store.root / run_id, 'extend it again')}"
            return None

        def resume() -> None:               # with its new state read (the poller's scan of its folder)
            if app.resume_run(run_id, where=where, why=f"a finished run extended to {epochs} epochs") \
                    and where == "app" and self.is_attached:
                app.open_run(run_id, "monitor", replace=True)
            elif self.is_attached:
                self.refresh_view()

        def done(error: str | None) -> None:
            if error:
                self.notify(error, severity="error", timeout=8)
            else:
                app.poll_runs(run_id, then=resume)

        app.actions.do(work, done, f"extending {run_id}")

    @on(Button.Pressed, "#clone")
    def action_clone(self) -> None:
        info = self.app.watcher.infos.get(self.run_id)
        if info is None or info.config is None:
            self.notify("this run has no readable config to clone", severity="warning")
            return
        self.app.open_new_run(initial=info.config.with_overrides(name=""), replace=True)

    @on(Button.Pressed, "#delete")
    def action_delete(self) -> None:
        self.app.confirm_delete(self.run_id, after=self.app.pop_screen)

    def action_stop(self) -> None:
        self.app.confirm_stop(self.run_id)

    def action_pause(self) -> None:
        self.app.toggle_pause(self.run_id)

    def action_continue(self) -> None:
        self.app.toggle_pause(self.run_id)

    def action_back(self) -> None:
        self.app.pop_screen()


def config_text(cfg: RunConfig) -> Text:
    """Every setting, one line per group; values that differ from the defaults are bold."""
    defaults = RunConfig().to_dict()
    values = cfg.to_dict()
    t = Text()
    for group, names in GROUPS.items():
        t.append(f"{group:<13}", style="bold dim")
        for i, name in enumerate(names):
            value = values[name]
            shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            t.append(("  " if i else "") + f"{name}=", style="dim")
            t.append(shown if shown != "" else "''", style="bold" if value != defaults[name] else "")
        t.append("\n")
    return t
