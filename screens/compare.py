"""Compare two or more runs: error curves overlaid, and a table of only the settings that differ plus results.

When plain and residual nets are both among the runs, the curves split into two panels side by side, plain left
and residual right, same colour per depth and same axes, the way He et al. 2016 Fig. 6 shows them (dotted:
training error, solid: test error). Runs that differ only in their seed fold into one group (f toggles): its mean
curves with the min-max band of its test error (sparse dots), and n, best and mean ± std in the table. `e` writes
the report of these runs (`tui_app.py report`) and shows its folder.
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Static

from core.results.groups import RunGroup, group_runs, step_to
from core.spec.config import RunConfig
from core.spec.grid import describe, varied_fields
from core.store.runs import RunInfo
from core.util.formatting import duration, epochs_text, model_name, pct

from .run_files import FollowsFiles, with_files
from .widgets.chart_keys import CHART_BINDINGS, TRAIN_BINDING, ChartKeys
from .widgets.curve_plot import MARKERS, PALETTE, CurvePlot, Series, axis_title, legend, run_series, y_limits
from .widgets.footer import Footer
from .widgets.group_table import mean_std_text, seeds_text
from .widgets.report_export import export_report
from .widgets.resume import RestyleWhenChanged
from .widgets.run_table import short_ids
from .widgets.sized_table import SizedTable
from .widgets.worker_errors import TellWorkerErrors

IGNORED = {"name", "data_dir", "log_every", "tensorboard"}  # settings that never change what a run learns
LR_FIELDS = ("optimizer", "lr", "schedule", "milestones", "milestone_unit", "lr_factor", "min_lr", "warmup_iters")
X_LABELS = {"iter": "iterations", "epoch": "epochs", "time": "training time (s)"}


def differing_settings(configs: list[RunConfig]) -> list[str]:
    """Fields whose values differ between the configs, in RunConfig order."""
    if not configs:
        return []
    dicts = [c.to_dict() for c in configs]
    return [k for k in dicts[0] if k not in IGNORED and any(d[k] != dicts[0][k] for d in dicts[1:])]


def setting_cells(cfg: dict, names: list[str]) -> list[str]:
    """The cells of the settings ``names`` of one run's (or group's) config dict; lists as '32000,48000'."""
    out = []
    for name in names:
        value = cfg.get(name, "-")
        out.append(",".join(map(str, value)) if isinstance(value, list) else str(value))
    return out


class CompareScreen(FollowsFiles, ChartKeys, TellWorkerErrors, RestyleWhenChanged, Screen):
    CSS_PATH = "compare.tcss"
    BINDINGS = [
        *CHART_BINDINGS,
        TRAIN_BINDING,
        Binding("f", "toggle_groups", "Seed groups"),
        Binding("x", "x_axis", "X axis: iterations, epochs, time", show=False),   # named in the legend
        Binding("e", "report", "Report"),
        Binding("escape,backspace", "back", "Back", key_display="⌫/esc"),   # backspace: no escape-sequence wait
    ]

    def __init__(self, run_ids: list[str]):
        super().__init__()
        self.run_ids = list(run_ids)
        self._told_same = False
        self._table_for: tuple | None = None    # what the table shows (``_fill_table``)
        self.grouped: bool | None = None       # None: decided at the first drawing (on when seeds' results repeat)
        self.report_folder = None
        self.x_axis: str | None = None         # iter, epoch or time (x); None: epochs when batch sizes differ

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal(id="plots"):
            yield CurvePlot(id="plot-plain")
            yield CurvePlot(id="plot-res")
        yield CurvePlot(id="plot-lr", unit="")
        yield Static(id="legend")
        yield SizedTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.follow_runs(self.run_ids)             # their curves: read by the poller's thread
        self.app.runs_changed_signal.subscribe(self, self.runs_changed)
        self.refresh_view()

    def runs_changed(self, changed: set[str]) -> None:
        if changed & set(self.run_ids):
            self.refresh_view()

    def infos(self) -> list[RunInfo]:
        return [self.app.watcher.infos[r] for r in self.run_ids if r in self.app.watcher.infos]

    def refresh_view(self) -> None:
        infos = self.infos()
        self._show_title(infos)
        self._draw_curves(infos)
        self._fill_table(infos)

    def on_resize(self) -> None:
        self._show_title(self.infos())              # as many ids as the new width holds

    def _show_title(self, infos: list[RunInfo]) -> None:
        """'Compare 12 runs: A, B, +10 more': the whole ids that fit the one-line title, then how many it leaves out
        (the table lists every run)."""
        room = self.app.size.width - 2
        title = Text.assemble(("Compare ", "bold"), f"{len(infos)} runs: ")
        ids = [i.id for i in infos]
        for n, run_id in enumerate(ids):
            rest = len(ids) - n - 1
            tail = f", +{rest} more" if rest else ""
            if title.cell_len + (2 if n else 0) + len(run_id) + len(tail) > room and n:
                title.append(f", +{len(ids) - n} more", style="dim")
                break
            title.append((", " if n else "") + run_id)
        self.query_one("#title", Static).update(title)

    def _draw_curves(self, infos: list[RunInfo]) -> None:
        runs = [with_files(i, self.app.run_files(i.id)) for i in infos if i.config is not None]
        groups = group_runs(runs)
        if self.grouped is None:
            self.grouped = any(g.n > 1 for g in groups)     # two or more results of the same settings
        items: list = groups if self.grouped else runs     # what gets one colour and one pair of curves
        plain = [x for x in items if _cfg(x).shortcut == "none"]
        res = [x for x in items if _cfg(x).shortcut != "none"]
        depth_keyed = all(len({_cfg(x).depth for x in group}) == len(group) for group in (plain, res))
        colors: dict = {}
        short = short_ids([i.id for i in runs], 12)      # ids that share their head keep the part that differs
        x_axis = self.current_x(runs)
        varied = [k for k in varied_fields([_cfg(x) for x in items])
                  if k not in ("name", "sweep_name") and not (self.grouped and k == "seed")]

        def label_of(x) -> str:             # by what varies ('lr=0.05 batch_size=64'), else the id
            return describe(_cfg(x), varied) or (x.name if self.grouped else short[x.id])

        def color_of(x) -> str:
            key = _cfg(x).depth if depth_keyed else id(x)
            return colors.setdefault(key, PALETTE[len(colors) % len(PALETTE)])

        def marker_of(x) -> str:            # the same order as the colours: without colour the markers differ
            return MARKERS[list(colors).index(_cfg(x).depth if depth_keyed else id(x)) % len(MARKERS)]

        def series_of(group: list) -> list[Series]:
            out: list[Series] = []
            for x in group:
                cfg = _cfg(x)
                name = model_name(cfg.depth, cfg.shortcut, cfg.arch, cfg.width)     # PreAct-11, not ResNet-11
                label = f"{cfg.depth}" if depth_keyed else label_of(x)
                if self.grouped:
                    out.extend(self._group_series(x, name if depth_keyed else label, color_of(x), label,
                                                  marker_of(x), x_axis))
                    continue
                color = color_of(x)
                train, test = run_series(name if depth_keyed else label, self.app.run_files(x.id).steps, x.epochs,
                                         color, end_label=label, marker=marker_of(x))
                to = step_to(x, x_axis)
                for series in (train, test):
                    series.xs = [to(v) for v in series.xs]
                out.extend([train, test] if self.show_train else [test])
            return out

        both = bool(plain) and bool(res)
        panels = [("plain networks", plain), ("residual networks", res)] if both else [("", plain or res)]
        all_series = [series_of(group) for _, group in panels]
        xs = [x for group in all_series for s in group for x in s.xs]
        limits = y_limits([s for group in all_series for s in group], self.y_mode, self.y_log) or (None, None)
        xmax = max(xs) if xs else None
        plots = [self.query_one("#plot-plain", CurvePlot), self.query_one("#plot-res", CurvePlot)]
        plots[1].display = both
        for plot, (title, _), series in zip(plots, panels, all_series):
            plot.title = axis_title(title or f"error % vs {X_LABELS[x_axis]}", self.y_mode, self.y_log,
                                    short=bool(title))
            plot.series = series
            (plot.ymin, plot.ymax), plot.xmax, plot.log = limits, xmax, self.y_log   # both panels on the same axes
        self._draw_lr(items, [color_of(x) for x in items], x_axis, xmax)
        flat = [s for group in all_series for s in group if not s.dotted]
        text = legend(flat)
        text.append("   (dotted: training error; solid, marked at epoch ends: test error; z: y range, y: log)"
                    if self.show_train else "   (test error; z: y range, y: log)", style="dim")
        if self.grouped:
            text.append("; seed groups: means, sparse dots: min-max of test error (f: single runs)", style="dim")
        if x_axis != "iter" or self.x_axis:
            text.append(f"; x axis: {X_LABELS[x_axis]} (x: iterations, epochs, time)", style="dim")
        self.query_one("#legend", Static).update(text)

    def current_x(self, runs: list[RunInfo]) -> str:
        """The x axis: as chosen with x, else epochs when batch sizes or training sets differ (their iterations do
        not line up), else iterations."""
        if self.x_axis:
            return self.x_axis
        sizes = {(i.config.batch_size, i.config.max_train_images) for i in runs}
        return "epoch" if len(sizes) > 1 else "iter"

    def _draw_lr(self, items: list, colors: list[str], x_axis: str, xmax: float | None) -> None:
        """The learning rate of each run or group below the errors, when their schedules differ (lr, decay, warm-up):
        where a rate dropped shows against the error curves above, on the same x axis."""
        plot = self.query_one("#plot-lr", CurvePlot)
        schedules = {tuple(str(getattr(_cfg(x), k)) for k in LR_FIELDS) for x in items}
        plot.display = len(schedules) > 1
        if not plot.display:
            return
        series = []
        for x, color in zip(items, colors):
            group = x if isinstance(x, RunGroup) else RunGroup(x.config, [x])
            band = group.lr_curve(x_axis, self._steps)
            if band is not None:
                series.append(Series("lr", band.xs, band.mean, color=color))
        top = max([y for s in series for y in s.ys] or [1.0])
        plot.title = f"learning rate vs {X_LABELS[x_axis]}"
        plot.series, plot.ymin, plot.ymax, plot.xmax = series, 0.0, top * 1.1, xmax

    def _steps(self, info: RunInfo) -> list[dict]:
        return self.app.run_files(info.id).steps

    def _group_series(self, group: RunGroup, name: str, color: str, end_label: str, marker: str,
                      x_axis: str = "iter") -> list[Series]:
        """A group's mean training error (dotted), the min and max of its test error (sparse) and its mean (solid)."""
        train, test = group.curves(x_axis, self._steps)
        out: list[Series] = []
        if train is not None and self.show_train:
            out.append(Series(f"{name} train", train.xs, train.mean, color=color, dotted=True))
        if test is not None:
            if test.n > 1:
                out += [Series("", test.xs, test.lo, color=color, sparse=True),
                        Series("", test.xs, test.hi, color=color, sparse=True)]
            out.append(Series(f"{name} test" + (f" (mean of {test.n})" if test.n > 1 else ""), test.xs, test.mean,
                              color=color, end_label=end_label, marker=marker))
        return out

    def _fill_table(self, infos: list[RunInfo]) -> None:
        shown = (self.grouped, [(i.id, i.state, i.epochs_done, i.total_epochs, i.final_test_err, i.best_test_err,
                                 i.duration_s, i.config) for i in infos])
        if shown == self._table_for:
            return                    # the same rows (their curves' files changed): the table stays as it is drawn
        self._table_for = shown
        table = self.query_one("#table", DataTable)
        table.clear(columns=True)
        diff = differing_settings([i.config for i in infos if i.config is not None])
        if self.grouped:
            self._fill_group_table(table, group_runs([i for i in infos if i.config is not None]),
                                   [d for d in diff if d != "seed"])
            return
        diff = [d for d in diff if d != "epochs"]   # the results' epochs column (done/total) says it already
        # settings and results have separate key spaces: a setting may share a result's name ("epochs")
        table.add_column("run", key="run")
        for name in diff:
            table.add_column(name, key=f"setting:{name}")
        for key, label in (("epochs", "epochs"), ("final", "final%"), ("best", "best%"), ("paper", "paper%"),
                           ("time", "time"), ("state", "state")):
            table.add_column(label, key=f"result:{key}")
        for info in infos:
            cfg = info.config.to_dict() if info.config else {}
            cells: list = [info.id, *setting_cells(cfg, diff)]
            cells += [epochs_text(info.epochs_done, info.total_epochs),
                      Text(pct(info.final_test_err, unit=False), justify="right"),
                      Text(pct(info.best_test_err, unit=False), justify="right"),
                      Text(pct(info.paper_err, unit=False), justify="right", style="dim"),
                      Text(duration(info.duration_s), justify="right"), info.state]
            table.add_row(*cells, key=info.id)
        if not diff and not self._told_same:
            self._told_same = True
            self.notify("these runs have the same settings", timeout=3)

    def _fill_group_table(self, table: DataTable, groups: list[RunGroup], diff: list[str]) -> None:
        table.add_column("group", key="group")
        for name in diff:
            table.add_column(name, key=f"setting:{name}")
        for key, label in (("n", "n"), ("seeds", "seeds"), ("best", "best%"), ("mean", "mean ± std%"),
                           ("paper", "paper%"), ("state", "states")):
            table.add_column(label, key=f"result:{key}")
        for g in groups:
            cfg = g.config.to_dict()
            cells: list = [g.name, *setting_cells(cfg, diff)]
            cells += [Text(str(g.n), justify="right"), seeds_text(g.seeds),
                      Text(pct(g.best, unit=False), justify="right"),
                      Text(mean_std_text(g), justify="right"),
                      Text(pct(g.runs[0].paper_err, unit=False), justify="right", style="dim"),
                      ", ".join(sorted({i.state for i in g.runs}))]
            table.add_row(*cells, key=g.runs[0].id)

    def action_x_axis(self) -> None:
        axes = ("iter", "epoch", "time")
        self.x_axis = axes[(axes.index(self.current_x(self.infos())) + 1) % len(axes)]
        self.refresh_view()

    def action_toggle_groups(self) -> None:
        self.grouped = not self.grouped
        self.refresh_view()

    def action_report(self) -> None:
        export_report(self, self.run_ids)

    def action_back(self) -> None:
        self.app.pop_screen()


def _cfg(item: RunInfo | RunGroup) -> RunConfig:
    return item.config
