"""Seed groups in the runs table (f) and the compare screen, the layer-response chart and the report key (e)."""
from __future__ import annotations

import json

from core.results.responses import FILE_NAME, _stamp
from core.store.runs import RunStore
from screens.app import make_app
from screens.compare import CompareScreen
from screens.detail import DetailScreen
from screens.widgets.curve_plot import CurvePlot
from screens.widgets.group_table import GroupsTable
from screens.widgets.run_table import RunsTable
from tests.core.results_helpers import fake_run

from .helpers import POLL, screen_text, wait_for


def seed_grid(root) -> RunStore:
    store = RunStore(root)
    for seed, err in ((1, 7.0), (2, 8.0), (3, 9.5)):
        fake_run(store, [20.0, err], depth=20, shortcut="A", seed=seed, dataset="cifar10")
    fake_run(store, [30.0, 10.0], depth=20, shortcut="none", seed=1, dataset="cifar10")
    return store


def row_texts(table) -> list[list[str]]:
    return [[getattr(c, "plain", str(c)) for c in table.get_row(r.key)] for r in table.ordered_rows]


async def test_f_folds_runs_into_seed_groups_and_enter_compares_them(tmp_path):
    seed_grid(tmp_path / "runs")
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        assert app.screen.query_one(RunsTable).row_count == 4
        assert "f: seed groups" in str(app.screen.query_one("#title").render())   # seeds repeat: the key is named
        await pilot.press("f")
        groups = app.screen.query_one(GroupsTable)
        assert groups.display and not app.screen.query_one(RunsTable).display
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]       # one run's keys leave the footer of the seed groups
        assert " Compare" in footer and not any(f" {k}" in footer for k in ("Stop", "Resume", "Del")), footer
        rows = row_texts(groups)
        # by hand: finals 7.0, 8.0, 9.5 -> mean 8.1667, sample std 1.2583
        assert [r[1:7] for r in rows] == [["plain-20 w4 sgd constant", "1", "1", "10.00", "10.00", "-"],
                                          ["ResNet-20 w4 sgd constant", "3", "1-3", "7.00", "8.17 ± 1.26", "8.75"]]
        assert [r[7] for r in rows] == ["12s", "12s"]     # time per run (issue 28): each fake run took 12 s
        groups.move_cursor(row=1)
        await pilot.press("space")                      # marks every run of the group
        assert len(app.marked) == 3 and row_texts(groups)[1][0] == "●"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare screen")
        screen = app.screen
        assert screen.grouped                           # seeds repeat: shown as one group
        series = screen.query_one("#plot-plain", CurvePlot).series
        band = [s for s in series if s.sparse]
        assert len(band) == 2 and [s.ys for s in band] == [[20.0, 7.0], [20.0, 9.5]]
        assert "8.17 ± 1.26" in screen_text(app)
        await pilot.press("f")                          # back to single runs: no band, three test curves
        series = screen.query_one("#plot-plain", CurvePlot).series
        assert not any(s.sparse for s in series) and len([s for s in series if not s.dotted]) == 3


async def test_e_on_compare_writes_the_report_and_shows_its_folder(tmp_path):
    store = seed_grid(tmp_path / "runs")
    ids = [r.id for r in store.runs()]
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.open_compare(ids)
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="compare screen")
        await pilot.press("e")
        folder = await wait_for(pilot, lambda: app.screen.report_folder, what="the report", timeout=60)
        assert folder.parent == (tmp_path / "reports").resolve()
        md = (folder / "report.md").read_text()
        assert "| 20 | 10.00 (n=1)‡ | 7.00 (8.17 ± 1.26, n=3)‡ | 8.75 | 6.89 |" in md   # ‡: far shorter than the paper
        assert (folder / "fig6.png").stat().st_size > 10_000
        assert any(str(folder) in n.message for n in app._notifications)


async def test_detail_shows_layer_responses_once_computed(tmp_path):
    store = seed_grid(tmp_path / "runs")
    run = next(store.runs())
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 40)) as pilot:
        (run.path / "checkpoint.pt").write_bytes(b"weights")
        await pilot.pause()
        app.open_run(run.id)
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="detail screen")
        await wait_for(pilot, lambda: "press l to compute" in screen_text(app), what="the hint (files read)")
        await pilot.press("l")                          # a file that is not a checkpoint: a message, no crash
        await wait_for(pilot, lambda: any("checkpoint.pt cannot be loaded" in n.message for n in app._notifications),
                       what="the error notification")
        assert isinstance(app.screen, DetailScreen) and not (run.path / FILE_NAME).exists()
        # while it computes the chart's place says so (it took ~10 s with no sign); after a failure, how to retry
        await wait_for(pilot, lambda: "press l to compute" in screen_text(app), what="the hint back")
        stds = [1.0, 0.5, 0.25, 0.75]
        (run.path / FILE_NAME).write_text(json.dumps({
            "checkpoint": _stamp(run.path / "checkpoint.pt"), "images": 128, "epoch": 2,
            "layers": [{"index": i + 1, "name": f"l{i}", "std": s} for i, s in enumerate(stds)]}))
        app.poll_runs(run.id)                           # read by the poller's thread, then drawn
        await wait_for(pilot, lambda: "4 layers" in screen_text(app), what="the chart")
        text = screen_text(app)
        assert "layer responses" in text and "4 layers" in text and "by index" in text and "sorted" in text
        assert "████" in text                           # the largest layer fills its column
        axis = [line.split("█")[0].split("▁")[0].strip() for line in text.splitlines() if "█" in line]
        assert "0" in axis                              # the bars start at zero, and the axis says so
        await pilot.press("e")                          # the report of this run, from the detail screen
        folder = await wait_for(pilot, lambda: app.screen.report_folder, what="the report", timeout=60)
        assert "| 20 | 7.00 (n=1)‡ | 8.75 | 6.89 |" in (folder / "report.md").read_text()
