"""Backspace goes back as Escape does (issue 21, point 4): Textual delivers a lone Escape only after its input loop
has waited for the rest of a possible escape sequence (up to ~0.1 s in a terminal), Backspace at once."""
from __future__ import annotations

from screens.app import make_app
from screens.compare import CompareScreen
from screens.detail import DetailScreen
from screens.help import HelpScreen
from screens.queue_devices import QueueScreen
from screens.runs import RunsScreen

from .helpers import POLL, wait_for


async def test_backspace_goes_back_to_the_runs_table_from_every_screen(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for key, screen in (("enter", DetailScreen), ("g", QueueScreen), ("question_mark", HelpScreen)):
            await pilot.press(key)
            await wait_for(pilot, lambda s=screen: isinstance(app.screen, s), 5, screen.__name__)
            await pilot.press("backspace")
            await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, f"the runs table from {key}")
        await pilot.press("space", "down", "space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), 5, "compare")
        await pilot.press("backspace")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the runs table from compare")
