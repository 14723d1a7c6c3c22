"""Issue 34, item 4 in the TUI: `/` filters by any setting with comparisons and `and`, says so for an unknown key;
tags and a note set from the detail screen (t) are shown there and filter the runs."""
from __future__ import annotations

from core.store.notes import read_notes
from screens.app import make_app
from screens.detail import DetailScreen
from screens.widgets.notes_dialog import NotesScreen

from .helpers import POLL, press, screen_text, wait_for
from .test_runs_screen import table_rows


async def filter_for(pilot, text: str) -> None:
    """/ then the text, once the filter box has the focus (keys before it would act on the table)."""
    await pilot.press("slash")
    await wait_for(pilot, lambda: pilot.app.focused is not None and pilot.app.focused.id == "filter", 5, "the box")
    await pilot.press(*text)


async def test_the_filter_takes_settings_comparisons_and_says_when_a_key_is_unknown(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await filter_for(pilot, "depth=56")              # showed 0 runs without a word before (issue 34, item 4)
        await wait_for(pilot, lambda: set(table_rows(app)) == {"r56-A", "plain-56"}, 5, "depth=56")
        await pilot.press(*" and shortcut=none")
        await wait_for(pilot, lambda: set(table_rows(app)) == {"plain-56"}, 5, "and shortcut=none")
        await press(pilot, "escape")
        await filter_for(pilot, "depth>=56 seed=0")
        await wait_for(pilot, lambda: set(table_rows(app)) == {"r56-A", "plain-56", "r110-stopped"}, 5, ">=")
        await press(pilot, "escape")
        await filter_for(pilot, "colour=red")
        await wait_for(pilot, lambda: "filter: unknown key 'colour'" in screen_text(app), 5, "the unknown key")


async def test_tags_and_a_note_from_the_detail_screen_are_shown_and_filter(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.open_run("r20-A", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        await press(pilot, "t")
        await wait_for(pilot, lambda: isinstance(app.screen, NotesScreen), 5, "the notes dialog")
        await press(pilot, *"best fig6", "tab", *"the baseline", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "saved")
        assert read_notes(fixture_runs / "r20-A") == {"tags": ["best", "fig6"], "note": "the baseline"}
        await wait_for(pilot, lambda: "tags best fig6  note the baseline" in screen_text(app), 5, "shown")
        await press(pilot, "backspace")
        await filter_for(pilot, "tag=best")
        await wait_for(pilot, lambda: set(table_rows(app)) == {"r20-A"}, 5, "tag=best")
