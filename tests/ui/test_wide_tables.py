"""Wide tables (issue 21, point 5): ← → scroll the runs and seed-group tables a column at a time, the run (or group)
and its status stay in view, the sideways place survives the refreshes while a run trains, and ? says so."""
from __future__ import annotations

from screens.app import make_app
from screens.help import HelpScreen
from screens.widgets.group_table import GroupsTable
from screens.widgets.run_table import RunsTable
from screens.widgets.table_scroll import column_stops

from .fixtures import add_running, quick, write_run
from .helpers import POLL, press, screen_text, wait_for


def wide_store(root):
    """Seed groups that differ in lr and batch (a varied column each), and a run training (refreshes)."""
    for depth in (8, 14):
        for seed in (1, 2):
            write_run(root, f"r{depth}-s{seed}", quick(depth=depth, width=4, seed=seed, lr=0.1 if depth == 8 else 0.05,
                                                       batch_size=64 if depth == 8 else 128), "finished",
                      epochs_done=15, final_test=9.0 + depth / 10, order=depth + seed)
    return add_running(root, order=30)


async def refreshed(pilot, app, live) -> None:
    """The live run writes a new step; wait until the watcher has read it (the tables are shown again)."""
    status = live.read_status()
    step = status["step"] + 7
    live.write_status({**status, "step": step, "updated_at": status["updated_at"] + 1})
    await wait_for(pilot, lambda: app.watcher.infos[live.id].step == step, 10, "the new step read")
    await pilot.pause(2 * POLL)


async def test_arrows_scroll_by_columns_keep_run_and_status_in_view_and_survive_refreshes(tmp_path):
    live = wide_store(tmp_path)
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 5 and table.max_scroll_x > 0, 10, "a table wider than 100")
        stops = column_stops(table)
        await press(pilot, "right")
        assert table.scroll_x == stops[1]              # one key, one column (it was one character)
        await press(pilot, "right", "right")
        assert table.scroll_x == min(stops[3], table.max_scroll_x)
        await press(pilot, *["right"] * 30)
        assert table.scroll_x == table.max_scroll_x
        header = screen_text(app).splitlines()[1]
        assert "run" in header and "status" in header and "final%" not in header, header   # status stays
        assert "peak mem" in header and "running" in screen_text(app)
        await press(pilot, "left")
        at = table.scroll_x
        assert at in stops and at < table.max_scroll_x
        await refreshed(pilot, app, live)
        assert table.scroll_x == at                     # a refresh keeps the place
        await press(pilot, *["left"] * 30)
        assert table.scroll_x == 0

        await press(pilot, "f")
        groups = app.screen.query_one(GroupsTable)
        await wait_for(pilot, lambda: groups.display and groups.row_count == 3, 5, "the seed groups")
        await press(pilot, "right")
        assert groups.scroll_x == min(column_stops(groups)[1], groups.max_scroll_x) > 1
        await press(pilot, *["right"] * 20)
        at = groups.scroll_x
        assert at == groups.max_scroll_x > 0 and "batch_size=64" in screen_text(app)
        await refreshed(pilot, app, live)
        await refreshed(pilot, app, live)
        assert groups.scroll_x == at and "batch_size=64" in screen_text(app)


async def test_question_mark_names_the_sideways_keys(tmp_path):
    wide_store(tmp_path)
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "the help")
        assert any(keys == "← →" and "a column at a time" in text for keys, text, _ in app.screen.rows)
