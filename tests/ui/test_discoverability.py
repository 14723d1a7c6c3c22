"""Issue 12, point 8: the delete dialog defaults to Keep and the cursor stays near, the run column stays in view,
80 columns keep the paper's error, finished and damaged runs are not offered a resume, a finished run can be
extended from its detail screen."""
from __future__ import annotations

from core.store.runs import Run, RunStore
from core.train.trainer import train_run
from screens.app import make_app
from screens.confirm import ConfirmScreen
from screens.detail import DetailScreen
from screens.monitor import MonitorScreen
from screens.widgets.run_table import RunsTable
from tests.conftest import tiny_config

from .fixtures import quick, write_run
from .helpers import POLL, screen_text, state_of, wait_for

LONG_IDS = ["r20-A-sgd-20261127-214501", "r56-none-sgd-20261127-220000", "r110-A-sgd-20261128-010101"]


async def test_delete_defaults_to_keep_and_the_cursor_stays_near(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        row = table.get_row_index("plain-56")
        table.move_cursor(row=row)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen) and app.focused.id == "answer-cancel"
        await pilot.press("enter")                          # enter keeps it
        await pilot.pause()
        assert (fixture_runs / "plain-56").is_dir()
        below = [r.key.value for r in table.ordered_rows][row + 1]
        await pilot.press("d")
        await pilot.click("#answer-delete")
        await wait_for(pilot, lambda: "plain-56" not in [r.key.value for r in table.ordered_rows], 5, "the row")
        assert table.cursor_row == row and table.current_id == below   # where it was, not back at the top


async def test_80_columns_keep_the_paper_column_and_the_run_column_stays_in_view(tmp_path):
    runs = tmp_path / "runs"
    for i, run_id in enumerate(LONG_IDS):
        depth = int(run_id[1:].split("-")[0])
        write_run(runs, run_id, quick(depth=depth, shortcut=run_id.split("-")[1]), "finished", epochs_done=15,
                  order=i)
    live = write_run(runs, "r44-A-sgd-20261128-020202", quick(depth=44), "running", epochs_done=5, step=270,
                     order=9, host=__import__("socket").gethostname())
    live.acquire_lock()                                              # training: its status has a progress bar
    try:
        app = make_app(runs_dir=runs, poll_interval=POLL)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            text = screen_text(app)
            header = next(line for line in text.splitlines() if "status" in line)
            assert "paper%" in header, header
            assert "8.75" in text and "6.43" in text and "7.17" in text   # He et al. 2016 Table 6: 20, 110, 44
            table = app.screen.query_one(RunsTable)
            table.scroll_to(x=table.max_scroll_x, animate=False, immediate=True)
            await pilot.pause()
            text = screen_text(app)
            assert "note" in text and "r20-A-sgd…" in text           # scrolled right, the run column stays in view
    finally:
        live.release_lock()


async def test_finished_and_damaged_runs_are_not_offered_a_resume(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for run_id, resume, extend in (("r20-A", False, True), ("broken-run", False, False),
                                       ("r110-stopped", True, False)):
            app.open_run(run_id, "detail")
            await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
            await pilot.pause()
            assert app.screen.query_one("#resume").display is resume, run_id
            assert app.screen.query_one("#extend").display is extend, run_id
            assert ("Resume here" in screen_text(app)) is resume, run_id
            await pilot.press("escape")


async def test_a_finished_run_is_extended_from_its_detail_screen(tmp_path):
    runs = tmp_path / "runs"
    run, state = train_run(RunStore(runs), tiny_config(name="short", epochs=2, channels_last="off"))
    assert state == "finished"
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_run("short", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen.id == "extend", 5, "the extend dialog")
        await pilot.press("ctrl+a", "ctrl+k", "1", "enter")       # one more epoch, trained here
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 10, "the monitor")
        await wait_for(pilot, lambda: state_of(app, "short") == "finished" and
                       app.watcher.infos["short"].epochs_done == 3, 90, "the third epoch")
    assert Run(runs / "short").read_config().epochs == 3
    events = "\n".join(Run(runs / "short").read_events())
    assert "extended to 3 epochs" in events and "resumed at epoch 3" in events


async def test_the_footer_offers_only_the_run_keys_that_apply(fixture_runs):
    """A finished run's detail offered 's Stop  p Pause  r Resume' (each only said 'cannot'); now the footer of the
    detail and the monitor shows the keys for the run's state, and they change when the state does."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        # issue 21, point 9: the detail's footer did not name x (extend a finished run)
        for run_id, view, shown, hidden in (("r20-A", "detail", ["Extend"], ["Stop", "Pause", "Resume"]),
                                            ("r110-stopped", "detail", ["Resume"], ["Stop", "Pause", "Extend"]),
                                            ("broken-run", "detail", [], ["Stop", "Pause", "Resume"]),
                                            ("r110-stopped", "monitor", ["Resume"], ["Stop", "Pause", "Pin"])):
            app.open_run(run_id, view)
            wanted = f"{view.capitalize()}Screen"
            await wait_for(pilot, lambda wanted=wanted, run_id=run_id: type(app.screen).__name__ == wanted
                           and app.screen.run_id == run_id, 5, f"the {view} of {run_id}")
            await pilot.pause()
            footer = screen_text(app).splitlines()[-1]
            assert all(f" {word}" in footer for word in shown), (run_id, footer)
            assert not any(f" {word}" in footer for word in hidden), (run_id, footer)
            await pilot.press("escape")
            await pilot.pause()
        # the state changes under the monitor: its footer follows (resumed in this app: Stop, no Resume)
        app.open_run("r110-stopped", "monitor")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the monitor")
        await pilot.pause()
        app.in_app.append("r110-stopped")            # as a resume in this app does, before its trainer starts
        app.screen.refresh_view()
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert " Stop" in footer and " Resume" not in footer, footer
        app.in_app.remove("r110-stopped")


async def test_run_ids_are_whole_on_a_wide_terminal_and_shortened_on_a_narrow_one(tmp_path):
    """At 160 columns the table still cut 'r20-A-sgd-20261127-214501' to 'r20-A-sgd…27-214501' with room to spare."""
    runs = tmp_path / "runs"
    for i, run_id in enumerate(LONG_IDS):
        write_run(runs, run_id, quick(depth=int(run_id[1:].split("-")[0])), "finished", epochs_done=15, order=i)
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        assert all(run_id in screen_text(app) for run_id in LONG_IDS), screen_text(app)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "r20-A-sgd…" in screen_text(app), 5, "the ids to shorten")
        header = next(line for line in screen_text(app).splitlines() if "status" in line)
        assert "paper%" in header, header
        await pilot.resize_terminal(160, 30)
        await wait_for(pilot, lambda: LONG_IDS[0] in screen_text(app), 5, "the ids whole again")


async def test_the_runs_of_a_seed_grid_keep_different_ids_in_a_narrow_table(tmp_path):
    """A grid launched from the form (depths 8,14 x shortcuts A,none x seeds 1-2) showed at 80 and 100 columns as
    pairs of identical rows: 'r8-A-w4-s…129-010455' twice, the seed cut out of both ids (the table has no seed
    column); after a first fix, the same grid launched twice still showed 'r14-plain-w4-sgd-s1…' for two runs. The
    ids that would look alike keep the part where they differ; with room (100 columns) they are whole, the paper's
    column still in view."""
    runs = tmp_path / "runs"
    ids = [f"r{d}-{sc}-w4-sgd-s{s}-20261129-{t}" for t in ("010257", "010455") for d in (8, 14)
           for sc in ("A", "plain") for s in (1, 2)]                         # the same grid, launched twice
    for i, run_id in enumerate(ids):
        write_run(runs, run_id, quick(depth=int(run_id[1:].split("-")[0]), width=4, seed=int(run_id[-17]),
                                      shortcut="none" if "plain" in run_id else "A"), "finished", epochs_done=3,
                  order=i)
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        cells = [str(c) for c in app.screen.query_one(RunsTable).get_column("id")]
        assert len(set(cells)) == len(ids), cells
        assert all(len(c) <= 20 for c in cells), cells
        assert any("s1" in c for c in cells) and any("s2" in c for c in cells), cells
        await pilot.resize_terminal(100, 30)
        await wait_for(pilot, lambda: all(run_id in screen_text(app) for run_id in ids), 5, "whole ids")
        header = next(line for line in screen_text(app).splitlines() if "status" in line)
        assert "paper%" in header, header


async def test_a_finished_run_extended_into_the_queue_is_logged_as_such(tmp_path):
    """Issue 21, point 9: events.log said "queued again at position 1 (was stopped)" of a finished run extended
    into the queue (the detail's x, "in the queue"); it was never stopped."""
    runs = tmp_path / "runs"
    run, state = train_run(RunStore(runs), tiny_config(name="done", epochs=1, channels_last="off"))
    assert state == "finished"
    app = make_app(runs_dir=runs, poll_interval=POLL)
    app.start_scheduler = lambda: None                   # no scheduler process in this test
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_run("done", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        app.screen._extend((2, "queue"))               # the extend dialog's answer: 2 epochs, in the queue
        await pilot.pause()
    events = "\n".join(Run(runs / "done").read_events())
    assert "queued again at position 1 (a finished run extended to 2 epochs)" in events, events
    assert "(was stopped)" not in events
