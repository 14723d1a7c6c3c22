"""Compare two or more runs: error curves overlaid, and a table of only the settings that differ plus results.

When plain and residual nets are both among the runs, the curves split into two panels side by side, plain left
and residual right, same colour per depth and same axes, the way He et al. 2016 Fig. 6 shows them (dotted:
training error, solid: test error).
"""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from core.config import RunConfig
from core.formatting import duration, epochs_text, pct
from core.runs import RunInfo

from .watch import JsonlTail
from .widgets.curve_plot import PALETTE, CurvePlot, Series, focus_range, legend, nice_ceiling, run_series

IGNORED = {"name", "data_dir", "log_every"}  # settings that never change what a run learns


def differing_settings(configs: list[RunConfig]) -> list[str]:
    """Fields whose values differ between the configs, in RunConfig order."""
    if not configs:
        return []
    dicts = [c.to_dict() for c in configs]
    return [k for k in dicts[0] if k not in IGNORED and any(d[k] != dicts[0][k] for d in dicts[1:])]


class CompareScreen(Screen):
    CSS_PATH = "compare.tcss"
    BINDINGS = [
        Binding("z", "zoom", "Full range"),
        Binding("t", "toggle_train", "Train curves"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, run_ids: list[str]):
        super().__init__()
        self.run_ids = list(run_ids)
        self.full_range = False
        self.show_train = True
        self._tails: dict[str, JsonlTail] = {}
        self._told_same = False

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        with Horizontal(id="plots"):
            yield CurvePlot(id="plot-plain")
            yield CurvePlot(id="plot-res")
        yield Static(id="legend")
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        for run_id in self.run_ids:
            self._tails[run_id] = JsonlTail(self.app.store.root / run_id / "steps.jsonl")
        self.app.runs_changed_signal.subscribe(self, self.runs_changed)
        self.refresh_view()

    def runs_changed(self, changed: set[str]) -> None:
        if changed & set(self.run_ids):
            self.refresh_view()

    def infos(self) -> list[RunInfo]:
        return [self.app.watcher.infos[r] for r in self.run_ids if r in self.app.watcher.infos]

    def refresh_view(self) -> None:
        infos = self.infos()
        self.query_one("#title", Static).update(Text.assemble(("Compare ", "bold"), f"{len(infos)} runs: ",
                                                              ", ".join(i.id for i in infos)))
        self._draw_curves(infos)
        self._fill_table(infos)

    def _draw_curves(self, infos: list[RunInfo]) -> None:
        plain = [i for i in infos if i.config is not None and i.config.shortcut == "none"]
        res = [i for i in infos if i.config is not None and i.config.shortcut != "none"]
        depth_keyed = all(len({i.config.depth for i in group}) == len(group) for group in (plain, res))
        colors: dict = {}

        def color_of(info: RunInfo) -> str:
            key = info.config.depth if depth_keyed else info.id
            return colors.setdefault(key, PALETTE[len(colors) % len(PALETTE)])

        def series_of(group: list[RunInfo]) -> list[Series]:
            out: list[Series] = []
            for info in group:
                tail = self._tails.get(info.id)
                if tail is not None:
                    tail.read()
                label = f"{info.config.depth}" if depth_keyed else info.id[:10]
                name = f"{'plain' if info.config.shortcut == 'none' else 'ResNet'}-{info.config.depth}"
                train, test = run_series(name if depth_keyed else info.id, tail.rows if tail else [], info.epochs,
                                         color_of(info), end_label=label)
                out.extend([train, test] if self.show_train else [test])
            return out

        both = bool(plain) and bool(res)
        panels = [("plain networks", plain), ("residual networks", res)] if both else [("", plain or res)]
        all_series = [series_of(group) for _, group in panels]
        ys = [y for group in all_series for s in group for y in s.ys]
        xs = [x for group in all_series for s in group for x in s.xs]
        focus = None if self.full_range else focus_range([i.final_test_err for i in infos])
        ymax = focus if focus is not None else (nice_ceiling(max(ys)) if ys else None)
        xmax = max(xs) if xs else None
        plots = [self.query_one("#plot-plain", CurvePlot), self.query_one("#plot-res", CurvePlot)]
        plots[1].display = both
        for plot, (title, _), series in zip(plots, panels, all_series):
            plot.title = (title + "  " if title else "") + "error % vs iterations"
            plot.ymax, plot.xmax = ymax, xmax
            plot.series = series
        flat = [s for group in all_series for s in group if not s.dotted]
        text = legend(flat)
        text.append("   (dotted: training error, solid: test error)" if self.show_train else "   (test error)",
                    style="dim")
        self.query_one("#legend", Static).update(text)

    def _fill_table(self, infos: list[RunInfo]) -> None:
        table = self.query_one("#table", DataTable)
        table.clear(columns=True)
        diff = differing_settings([i.config for i in infos if i.config is not None])
        # settings and results have separate key spaces: a setting may share a result's name ("epochs")
        table.add_column("run", key="run")
        for name in diff:
            table.add_column(name, key=f"setting:{name}")
        for key, label in (("epochs", "epochs"), ("final", "final%"), ("best", "best%"), ("paper", "paper%"),
                           ("time", "time"), ("state", "state")):
            table.add_column(label, key=f"result:{key}")
        for info in infos:
            cfg = info.config.to_dict() if info.config else {}
            cells: list = [info.id]
            for name in diff:
                value = cfg.get(name, "-")
                cells.append(",".join(map(str, value)) if isinstance(value, list) else str(value))
            cells += [epochs_text(info.epochs_done, info.total_epochs),
                      Text(pct(info.final_test_err, unit=False), justify="right"),
                      Text(pct(info.best_test_err, unit=False), justify="right"),
                      Text(pct(info.paper_err, unit=False), justify="right", style="dim"),
                      Text(duration(info.duration_s), justify="right"), info.state]
            table.add_row(*cells, key=info.id)
        if not diff and not self._told_same:
            self._told_same = True
            self.notify("these runs have the same settings", timeout=3)

    def action_zoom(self) -> None:
        self.full_range = not self.full_range
        self.refresh_view()

    def action_toggle_train(self) -> None:
        self.show_train = not self.show_train
        self.refresh_view()

    def action_back(self) -> None:
        self.app.pop_screen()
