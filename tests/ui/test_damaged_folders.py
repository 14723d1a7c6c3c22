"""Issue 11, point 1, in the TUI: one runs folder holding every kind of damage in every run file (tests/core/
corruptions.py) opens and lists each run in its state; the detail of every run whose damage reaches the detail in its
own way, and a compare of all runs, draw without an exception; links planted in the folders are never followed."""
from __future__ import annotations

from screens.app import make_app
from screens.compare import CompareScreen
from screens.detail import DetailScreen
from screens.widgets.run_table import RunsTable
from tests.core.corruptions import DAMAGE, OUTSIDE_TEXT, case_id, expected_state

from .helpers import press, screen_text, wait_for

# The detail reads steps.jsonl and events.log itself: every damage of those. The other files reach it through the
# run's summary, where every damage of one file looks alike (config.json: no settings; status.json: no status ...).
DETAIL_CASES = ([case_id(name, d) for name in ("steps.jsonl", "events.log") for d in DAMAGE]
                + [case_id("config.json", "wrong-types"), case_id("status.json", "non-numeric"),
                   case_id("epochs.jsonl", "wrong-types"), case_id("epochs.jsonl", "truncated"),
                   case_id("checkpoint.pt", "truncated"), case_id("lock", "directory")])


async def test_the_app_survives_every_damaged_folder(damaged_runs):
    runs, cases, outside = damaged_runs
    app = make_app(runs_dir=runs, poll_interval=5.0)      # nothing changes: no need to re-read 81 folders often
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == len(cases), what="every run in the table")
        status = [c.key.value for c in table.ordered_columns].index("status")
        for rid, (name, damage) in cases.items():
            assert table.get_row(rid)[status].plain == expected_state(name, damage), rid
        table.move_cursor(row=table.get_row_index(case_id("events.log", "non-utf8")))
        await press(pilot, "enter")                        # opened from the table, as a user would
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), what="the detail screen")
        events = str(app.screen.query_one("#events").render())
        assert "\\x1b[2J" in events and "\x1b" not in events   # events.log's escape codes shown, not obeyed
        app.pop_screen()
        for rid in DETAIL_CASES:
            await app.push_screen(DetailScreen(rid))
            await pilot.pause()
            assert rid in screen_text(app), rid
            app.pop_screen()
        await app.push_screen(CompareScreen(sorted(cases)))
        await wait_for(pilot, lambda: "Compare" in screen_text(app), what="the compare screen's title")
        app.pop_screen()
        await pilot.pause()
    assert app.return_code in (None, 0)
    assert outside.read_bytes() == OUTSIDE_TEXT
