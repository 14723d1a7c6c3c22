"""The study screen (screens/study.py): `t` on a trial's run opens its study; its trials, the best so far and the
chart; enter opens a trial's run; `t` elsewhere says how to start one."""
from __future__ import annotations

from core.store.runs import RunStore
from screens.app import make_app
from screens.study import StudyScreen
from tests.conftest import tiny_config
from tests.core.study.helpers import make_study

from .helpers import POLL, press, screen_text, wait_for


async def test_the_study_screen_lists_trials_and_opens_a_trials_run(tmp_path):
    root = tmp_path / "runs"
    ids = make_study(root)
    app = make_app(runs_dir=root, poll_interval=POLL)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: "ui-t0" in screen_text(app), what="the runs table")
        await press(pilot, "t")            # one study in the folder: any run opens it
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen) and app.screen.data, what="the study")
        text = screen_text(app)
        assert "Study ui" in text and "3 of 3 trials" in text and "best: trial" in text
        for run_id in ids:
            assert run_id in text
        assert "complete" in text and "running" in text
        assert [s.label for s in app.screen.query_one("#chart").series] == ["finished", "best so far"]
        await press(pilot, "enter")       # the first trial's run
        await wait_for(pilot, lambda: getattr(app.screen, "run_id", None) == ids[0], what="the trial's run")
        await press(pilot, "escape")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyScreen), what="back to the study")
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, StudyScreen), what="back to the runs")


async def test_t_without_a_study_says_how_to_start_one(tmp_path):
    store = RunStore(tmp_path / "runs")
    store.create(tiny_config(name="plain"), state="stopped")
    app = make_app(runs_dir=store.root, poll_interval=POLL)
    async with app.run_test(size=(120, 34)) as pilot:
        await wait_for(pilot, lambda: "plain" in screen_text(app), what="the runs table")
        await press(pilot, "t")
        await wait_for(pilot, lambda: any("no study here" in str(n.message) for n in app._notifications),
                       what="the note")
        assert not isinstance(app.screen, StudyScreen)
        await press(pilot, "question_mark")        # `?` lists the key
        await wait_for(pilot, lambda: "Study of the highlighted trial" in screen_text(app), what="t in the help")
