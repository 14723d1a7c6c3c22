"""Issue 27, item 6: the new-run form starts a study. A study name turns the launch into a search over the space
field's ranges (the other fields are its fixed settings); it is checked as `study` checks it, and ctrl+s makes the
study in the folder's storage, starts its driver in the background and opens the study's screen."""
from __future__ import annotations

import time

from core.serve import scheduler_control as S
from core.study.spec import load, storage_url
from screens.app import make_app
from screens.study import StudyScreen
from tests.conftest import tiny_config

from .helpers import POLL, wait_for
from .test_form import burst, form_ready


def settle(form, **values) -> None:
    for name, value in values.items():
        form.set_value(name, value)
    form.revalidate()


async def test_the_form_checks_a_study_as_the_cli_does_then_starts_it_and_opens_its_screen(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    app = make_app(runs_dir=root, poll_interval=POLL)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            burst(app, "n")
            await wait_for(pilot, lambda: form_ready(app), 10, "the form")
            form = app.screen
            form.load(tiny_config(epochs=2, val_split=0))
            settle(form, study="formstudy", space="lr=log:1e-3:1e-1", trials="1", pruner="none")
            assert form.study is None and "a study measures its objective on images held out" in form.errors[
                "val_split"]
            settle(form, val_split="64", space="lr=log:0:1")
            assert "lr: a log range needs a low end above 0" in form.errors["space"]
            settle(form, space="lr=log:1e-3:1e-1", depth="8,14")
            assert "make 2 runs" in form.errors["study"]
            settle(form, depth="8", trials="x")
            assert "a whole number of trials" in form.errors["trials"]
            settle(form, trials="1")
            assert form.errors == {} and form.study is not None
            assert "study formstudy: 1 trial of up to 2 epochs" in str(form.query_one("#summary").render())
            assert not (root / "studies.db").exists()                  # nothing made before the launch

            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), 60, "the study's screen")
            study, spec = load("formstudy", storage_url(root, None))
            assert spec.space == ["lr=log:1e-3:1e-1"] and spec.trials == 1 and spec.pruner == "none"
            assert spec.config.val_split == 64 and spec.config.depth == 8 and spec.config.epochs == 2
            # the driver, a process of its own, asks for the trials and the scheduler it started trains them
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                done = [t for t in load("formstudy", storage_url(root, None))[0].trials if t.state.name == "COMPLETE"]
                if len(done) == 1:
                    break
                await pilot.pause(0.5)
            assert len(done) == 1, (root / ".studies" / "formstudy.log").read_text()
            await wait_for(pilot, lambda: "study formstudy done" in (root / ".studies" / "formstudy.log").read_text(),
                           30, "the driver's end")
    finally:
        S.stop(root)
