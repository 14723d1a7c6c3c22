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


def cut_values(table) -> list[str]:
    """Cells shown cut mid-value: for every column of every visible row, the part on screen (from the table's rendered
    lines at each column's place) must be the whole value, nothing, or a long text ending in '…'."""
    lines = [table.render_line(y).text for y in range(table.size.height)]
    left = sum(c.get_render_width(table) for c in table.ordered_columns[:table.fixed_columns])
    pos, places = left - round(table.scroll_x), []
    for column in table.ordered_columns[table.fixed_columns:]:
        w = column.get_render_width(table)
        places.append((column.key, pos, pos + w))
        pos += w
    bad = []
    first = round(table.scroll_y)
    for y, row in enumerate(table.ordered_rows[first:first + table.size.height - 1], start=1):
        for key, start, end in places:
            shown = lines[y][max(start, left):max(left, min(end, table.size.width))].strip()
            whole = table.get_cell(row.key, key)
            whole = (whole.plain if hasattr(whole, "plain") else str(whole)).strip()
            elided = shown.endswith("…") and len(whole) > len(shown) - 1 and whole.startswith(shown[:-1].strip())
            if shown and shown != whole and not elided:
                bad.append(f"{row.key.value}/{key.value}: {shown!r} of {whole!r}")
    return bad


async def test_no_column_is_cut_mid_value_at_80_and_100_columns(tmp_path):
    """lr 0.1 read '0.', wd 0.0001 and 0.0005 both '0.000', a sweep 'lr-wd' 'lr-': the column at the screen's right
    edge was cut mid-value. Now it is blank until scrolled into view (its header says '›'), a note ends in '…'."""
    for i, (lr, wd) in enumerate([(0.1, 0.0001), (0.1, 0.0005), (0.05, 0.0001), (0.05, 0.0005)]):
        write_run(tmp_path, f"sw-{i}", quick(depth=20, epochs=12, lr=lr, weight_decay=wd, sweep_name="lr-wd"),
                  "failed" if i == 3 else "finished", epochs_done=12, final_test=8 + i, order=i,
                  error="CUDA error: an illegal memory access was encountered" if i == 3 else None)
    for size in ((80, 24), (100, 30)):
        app = make_app(runs_dir=tmp_path, poll_interval=POLL)
        async with app.run_test(size=size) as pilot:
            table = app.screen.query_one(RunsTable)
            await wait_for(pilot, lambda t=table: t.row_count == 4 and t.max_scroll_x > 0, 10, "the sweep's runs")
            seen = set()
            for _ in range(len(table.ordered_columns)):      # every sideways place, to the far right
                assert cut_values(table) == [], (size, table.scroll_x)
                seen.add(round(table.scroll_x))
                await press(pilot, "right")
            assert len(seen) > 2 and max(seen) == table.max_scroll_x
            header = table.render_line(0).text
            assert "›" not in header           # at the far right nothing more is to the right
            await press(pilot, "home", *["left"] * len(table.ordered_columns))
            assert round(table.scroll_x) == 0 and table.render_line(0).text.rstrip().endswith("›"), size
