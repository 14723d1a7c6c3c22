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


def test_two_objectives_chart_the_trials_against_each_other_with_the_pareto_front():
    """Issue 27, item 6: for two objectives the study's chart is validation error against the second objective,
    the trials as points (no line between them) and the Pareto front as a line through its trials."""
    from screens.study import objective_chart
    from screens.widgets.curve_plot import draw

    def trial(n, values, state="complete"):
        return {"number": n, "state": state, "values": values}

    trials = [trial(0, [40.0, 10.0]), trial(1, [30.0, 20.0]), trial(2, [50.0, 30.0]), trial(3, None, "running")]
    data = {"spec": {"objectives": ["val_err", "train_time"]}, "trials": trials, "best": trials[:2]}
    title, (points, front) = objective_chart(data)
    assert title == "val_err vs train_time (• trials, line: Pareto front)"
    assert (list(points.xs), list(points.ys), points.scatter) == ([10.0, 20.0, 30.0], [40.0, 30.0, 50.0], True)
    assert (list(front.xs), list(front.ys), front.scatter) == ([10.0, 20.0], [40.0, 30.0], False)
    drawn = draw([points, front], 60, 14).plain
    assert drawn.count("•") == 3                            # each trial a point
    one = {"spec": {"objectives": ["val_err"]}, "trials": trials, "best": trials[1:2]}
    title, (finished, best) = objective_chart(one)         # one objective: over trials, and the best so far
    assert title.startswith("objective over trials") and list(best.ys) == [40.0, 30.0, 30.0]
