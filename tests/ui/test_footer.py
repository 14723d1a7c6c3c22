"""The key bar under each screen (screens/widgets/footer.py): rebuilt when its keys change, not on every return to
the screen (issue 21, point 4: Textual's Footer recomposed on each, most of the time from escape to the table)."""
from __future__ import annotations

from textual.widgets._footer import FooterKey

from screens.app import make_app
from screens.widgets.footer import Footer

from .helpers import POLL, screen_text, wait_for


def keys_of(screen) -> list[FooterKey]:
    return list(screen.query_one(Footer).query(FooterKey))


async def test_the_runs_screen_keeps_its_key_bar_until_its_keys_change(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.first_drawn and keys_of(app.screen), what="the runs table and its keys")
        runs = app.screen
        before = keys_of(runs)
        assert "Stop" in screen_text(app)
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: app.screen is not runs and keys_of(app.screen), what="a run's screen")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is runs, what="the runs table again")
        await pilot.pause(0.2)
        assert keys_of(runs) == before and all(a is b for a, b in zip(keys_of(runs), before))  # the same widgets
        await pilot.press("f")                   # seed groups: stop, resume, delete leave the bar
        await wait_for(pilot, lambda: "Stop" not in screen_text(app), what="the key bar of the seed groups")
        assert keys_of(runs) != before
        await pilot.press("f")
        await wait_for(pilot, lambda: "Stop" in screen_text(app), what="the key bar of the runs again")
