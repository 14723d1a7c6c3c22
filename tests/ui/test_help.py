"""`?` shows every key of the current screen, sorting included; F1 works inside a text field; the palette has it."""
from __future__ import annotations

from screens.app import make_app
from screens.detail import DetailScreen
from screens.help import HelpScreen
from screens.runs import RunsScreen

from .helpers import POLL, screen_text, wait_for


def help_text(app) -> str:
    return "\n".join(f"{keys}  {text}" for keys, text, _ in app.screen.rows)


async def test_question_mark_lists_the_keys_of_the_screen_beneath(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert "? keys" in screen_text(app)                       # named in the title bar
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "the help screen")
        text = help_text(app)
        for line in ("n  New", "p  Pause", "o  Sort by the next column", "click a header  sort by that column",
                     "/  Filter", "q  Quit", "esc  Clear filter"):
            assert line in text, (line, text)
        assert "Sort by the next column" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
        app.open_run("r20-A", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "the detail's help")
        assert "n  Clone" in help_text(app) and "⌫/esc  Back" in help_text(app) and "New" not in help_text(app)
        await pilot.press("question_mark")                     # ? again closes it
        assert isinstance(app.screen, DetailScreen)
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Keys of this screen" in titles or "Keys" in titles


async def test_f1_opens_the_help_from_a_form_field_where_question_mark_is_text(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_new_run()
        await wait_for(pilot, lambda: getattr(app.screen, "ready", False), 10, "the form")
        form = app.screen
        form.query_one("#f-name").focus()
        await pilot.pause()
        await pilot.press("a", "question_mark")
        assert form.query_one("#f-name").value == "a?" and app.screen is form
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "the form's help")
        text = help_text(app)
        assert "^s  Launch" in text and "esc  Cancel" in text and "Next field" in text and "a letter jumps" in text


async def test_the_queue_help_says_what_its_keys_do(fixture_runs):
    """The queue's help read '⇧↑ Up', '⇧↓ Down', 'x Remove' and did not name enter."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("g")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "QueueScreen", 5, "the queue")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "the queue's help")
        text = help_text(app)
        for line in ("⇧↑  Move the queued run up", "⇧↓  Move the queued run down", "x  Take the run out of the queue",
                     "enter  open the run"):
            assert line in text, (line, text)
