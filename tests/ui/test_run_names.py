"""One rule for run names (issue 21, point 7): a name already in the runs folder is refused by the form and by the
CLI alike, before anything is created; the form says so under the name field while it is typed, and a launch empties
the field (a name is used once). The form had silently made 'b-late-2'; the CLI refused ('already exist', exit 2)."""
from __future__ import annotations

import pytest

from cli.main import main
from core.store.runs import RunStore
from screens.app import make_app
from screens.new_run import NewRunScreen

from .fixtures import quick, write_run
from .helpers import POLL, launched, press, wait_for
from .test_form import open_form, set_field


async def test_the_form_refuses_a_name_in_use_under_the_field_before_ctrl_s(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, "b-late", quick(depth=20), "finished", epochs_done=15)
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        form.query_one("#f-dataset").value = "synthetic"
        await set_field(pilot, "name", "b-late")
        await wait_for(pilot, lambda: "name" in form.errors, 5, "the name's error")
        message = str(form.query_one("#msg-name").render())
        assert "a run named 'b-late' already exists" in message and "leave it empty" in message, message
        assert form.query_one("#launch").disabled and "name" in str(form.query_one("#summary").render())
        await press(pilot, "ctrl+s")
        await pilot.pause(0.3)
        assert isinstance(app.screen, NewRunScreen) and sorted(p.name for p in runs.iterdir()) == ["b-late"]
        # a seed grid named b-late names its runs b-late-s1, b-late-s2: one of them taken is refused too
        write_run(runs, "b-late-s2", quick(depth=20, seed=2), "finished", epochs_done=15)
        await set_field(pilot, "seed", "1-2")
        await wait_for(pilot, lambda: "'b-late-s2' already exists" in form.errors.get("name", ""), 5, "the grid's")
        await set_field(pilot, "seed", "0")
        await set_field(pilot, "name", "b-late-x")
        await wait_for(pilot, lambda: not form.errors, 5, "a free name")
        assert not form.query_one("#launch").disabled


async def test_a_name_taken_while_the_form_was_closed_is_refused_when_it_reopens(tmp_path):
    runs = tmp_path / "runs"
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        await set_field(pilot, "name", "late")
        assert "name" not in form.errors
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not form.is_current, 5, "the runs table")
        RunStore(runs).create(quick(depth=20, name="late"))     # e.g. `tui_app.py train --name late` meanwhile
        await press(pilot, "n")
        await wait_for(pilot, lambda: form.is_current and "name" in form.errors, 10, "the name refused on reopening")


async def test_a_launch_refuses_a_name_taken_after_the_form_checked_it(tmp_path):
    """The form checks names against the app's listing (no file read at each keystroke); a run another process
    names the same before the listing shows it is refused at the launch, never placed at 'late-2'."""
    runs = tmp_path / "runs"
    app = make_app(runs_dir=runs, poll_interval=3600)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        RunStore(runs).create(quick(depth=20, name="late"))          # not listed by the app yet
        assert "late" not in app.watcher.ids()
        assert await launched(pilot, [quick(depth=20, name="late")], where="queue") == []
        await wait_for(pilot, lambda: any("a run named 'late' already exists" in n.message
                                          for n in app._notifications), 5, "the refusal told")
        assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["late"]


@pytest.mark.parametrize("command", [["train"], ["queue", "add"]])
def test_the_cli_refuses_a_name_in_use_in_the_forms_words(tmp_path, capsys, command):
    runs = tmp_path / "runs"
    RunStore(runs).create(quick(depth=20, name="e-adam"))
    code = main([*command, "--preset", "quick", "--dataset", "synthetic", "--name", "e-adam", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and f"a run named 'e-adam' already exists in {runs}" in err, err
    assert "--name out for a generated one" in err
    assert sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) == ["e-adam"]
