"""The TUI shows sweeps (issue 18, point 5): the runs table gains a column per setting the shown runs vary, / filters
on them, the seed-group view keeps its sideways scroll when the runs refresh, and compare draws by the varied
setting against a chosen x axis with the learning rate."""
from __future__ import annotations

from screens.app import make_app
from screens.widgets.group_table import GroupsTable
from screens.widgets.run_table import RunsTable

from .fixtures import quick, write_run
from .helpers import POLL, wait_for


def sweep_store(root):
    """lr 0.1/0.05 x batch 64/128, seed 1 each, in sweep 'lrb', plus a run of no sweep."""
    for lr in (0.1, 0.05):
        for batch in (64, 128):
            write_run(root, f"lr{lr}-b{batch}", quick(lr=lr, batch_size=batch, seed=1, sweep_name="lrb", epochs=4),
                      "finished", epochs_done=4, final_test=10 + lr * 10 + batch / 100)
    return root


def rows(app) -> dict[str, list[str]]:
    table = app.screen.query_one(RunsTable)
    return {r.key.value: [getattr(c, "plain", str(c)) for c in table.get_row(r.key)] for r in table.ordered_rows}


async def test_runs_table_shows_the_varied_settings_as_columns_and_filters_on_them(tmp_path):
    app = make_app(runs_dir=sweep_store(tmp_path / "runs"), poll_interval=POLL)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for(pilot, lambda: len(rows(app)) == 4, 10, "the four runs")
        table = app.screen.query_one(RunsTable)
        keys = [c.key.value for c in table.ordered_columns]
        assert "v:lr" in keys and "v:batch_size" in keys and "v:sweep_name" not in keys   # one sweep: not varied
        lr_at, batch_at = keys.index("v:lr"), keys.index("v:batch_size")
        assert (rows(app)["lr0.05-b128"][lr_at], rows(app)["lr0.05-b128"][batch_at]) == ("0.05", "128")
        await pilot.press("slash", *"lr=0.05 batch_size=64")
        await pilot.pause()
        assert set(rows(app)) == {"lr0.05-b64"}
        await pilot.press("escape")
        await pilot.press("slash", *"lrb")                          # the sweep's name
        await pilot.pause()
        assert len(rows(app)) == 4


async def test_the_seed_group_view_keeps_its_sideways_scroll_across_refreshes(tmp_path):
    app = make_app(runs_dir=sweep_store(tmp_path / "runs"), poll_interval=POLL)
    async with app.run_test(size=(60, 20)) as pilot:
        await wait_for(pilot, lambda: len(rows(app)) == 4, 10, "the four runs")
        await pilot.press("f")
        groups = app.screen.query_one(GroupsTable)
        await wait_for(pilot, lambda: groups.display and len(groups.groups) == 4, 5, "the group view")
        groups.scroll_to(x=30, animate=False, immediate=True)
        await pilot.pause()
        assert groups.scroll_x == 30
        app.screen.refresh_table()          # what every poll that sees a change does
        await pilot.pause()
        assert groups.scroll_x == 30


async def test_compare_draws_by_the_varied_setting_with_an_x_axis_key_and_the_learning_rate(tmp_path):
    from screens.compare import CompareScreen
    from screens.widgets.curve_plot import CurvePlot

    root = tmp_path / "runs"
    for lr, batch in ((0.1, 64), (0.05, 128)):
        write_run(root, f"lr{lr}", quick(lr=lr, batch_size=batch, seed=1, epochs=4), "finished", epochs_done=4,
                  ipe=50 if batch == 64 else 25, final_test=12.0)
    app = make_app(runs_dir=root, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.push_screen(CompareScreen(["lr0.1", "lr0.05"]))
        await pilot.pause()
        screen = app.screen
        plot = screen.query_one("#plot-plain", CurvePlot)
        assert "vs epochs" in plot.title                     # batch sizes differ: epochs line the runs up
        labels = {s.label for s in plot.series}
        assert "lr=0.1 batch_size=64 test" in labels and "lr=0.05 batch_size=128 test" in labels
        tests = [s for s in plot.series if s.label.endswith("test")]
        assert all(s.xs == [1.0, 2.0, 3.0, 4.0] for s in tests)     # epoch ends at epochs 1-4 for both
        lr_plot = screen.query_one("#plot-lr", CurvePlot)
        assert lr_plot.display and len(lr_plot.series) == 2      # their rates differ: the lr panel shows them
        assert "learning rate vs epochs" in lr_plot.title
        await pilot.press("x")                               # epochs -> time
        await pilot.pause()
        assert "vs training time (s)" in plot.title
        await pilot.press("x")                               # -> iterations
        await pilot.pause()
        assert "vs iterations" in plot.title
        assert sorted(s.xs[-1] for s in plot.series if s.label.endswith("test")) == [100, 200]
