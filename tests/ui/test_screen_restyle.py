"""A screen pushed again is not restyled when nothing its styles depend on changed (the new-run form opened in a
third of the time), and is when the app's side changed while it was away: the theme here
(screens/widgets/resume.py)."""
from __future__ import annotations

from textual.widgets import Input

from screens.app import make_app
from screens.new_run import NewRunScreen
from screens.runs import RunsScreen

from .helpers import POLL, wait_for


async def open_form(pilot, app) -> NewRunScreen:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), 10, "the form")
    await pilot.pause()
    return app.screen


async def back(pilot, app) -> None:
    await pilot.press("escape")
    await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 10, "the runs table")


async def test_the_form_pushed_again_is_restyled_only_after_the_theme_changed(fixture_runs, monkeypatch):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        form = await open_form(pilot, app)
        dark_background = form.query(Input).first().styles.background
        await back(pilot, app)
        restyled = []
        original = NewRunScreen.update_node_styles
        monkeypatch.setattr(NewRunScreen, "update_node_styles",
                            lambda self, animate=True: (restyled.append(1), original(self, animate))[1])
        await open_form(pilot, app)
        assert restyled == [], "nothing changed: the form keeps the styles it has"
        await back(pilot, app)
        app.theme = "textual-light"
        await pilot.pause()
        form = await open_form(pilot, app)
        assert form.query(Input).first().styles.background != dark_background, "the new theme's colours"
