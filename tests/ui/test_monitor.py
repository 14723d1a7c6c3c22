"""The monitor (issue 12, point 5): r resumes, the grid is followed (f pins), no 'press r' right after a launch,
the epoch bar agrees with its count, and esc from its detail comes back to it."""
from __future__ import annotations

import shutil

from core.store.runs import Run
from core.train.events import Progress
from screens.app import make_app
from screens.monitor import MonitorScreen, position
from tests.conftest import tiny_config

from .fixtures import add_running, quick, write_run
from .helpers import POLL, launched, screen_text, wait_for


async def open_monitor(pilot, run_id: str) -> MonitorScreen:
    pilot.app.open_run(run_id, "monitor")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen), 5, "the monitor")
    await pilot.pause()
    return pilot.app.screen


async def test_r_resumes_from_the_monitor_and_the_footer_says_so(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        monitor = await open_monitor(pilot, "r110-stopped")
        assert "stopped: checkpointed; r resumes" in screen_text(app) and "r Resume" in screen_text(app)
        await pilot.press("r")
        assert app.is_in_app("r110-stopped") or app.watcher.infos["r110-stopped"].state != "stopped"
        assert app.screen is monitor


async def test_the_monitor_follows_the_grid_and_f_pins_it(fixture_runs):
    live = add_running(fixture_runs)          # r44-live trains (holds its lock); r20-A has finished
    write_run(fixture_runs, "next-up", quick(depth=20), "queued", epochs_done=0, order=41)
    try:
        app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            grid = ["r20-A", "r44-live", "next-up"]
            app.grids.update({r: grid for r in grid})
            monitor = await open_monitor(pilot, "r20-A")
            assert monitor.run_id == "r44-live"        # the grid's first run has ended: on to the next
            assert "grid 2/3, following" in screen_text(app)
            await pilot.press("f")                     # pinned: it stays when its run ends
            assert "grid 2/3, pinned" in screen_text(app)
            live.release_lock()
            Run(fixture_runs / "r44-live").update_status(state="stopped")
            await wait_for(pilot, lambda: app.watcher.infos["r44-live"].state == "stopped", 5, "r44-live to stop")
            await pilot.pause(0.3)
            assert monitor.run_id == "r44-live"
            await pilot.press("f")                     # following again: on to the queued one
            assert monitor.run_id == "next-up" and "grid 3/3, following" in screen_text(app)
    finally:
        live.release_lock()


async def test_the_monitor_waits_on_a_grid_run_queued_in_the_folder_and_follows_the_one_that_starts(fixture_runs):
    """Issue 21, point 1: a grid in the folder's queue (the scheduler's, not the app's). The monitor skipped through
    every queued run as if each had ended and stopped on the last ("grid 3/3"); it must stay on the next waiting
    run, say where it waits, and move to whichever run of the grid starts training."""
    write_run(fixture_runs, "q-1", quick(depth=20), "queued", epochs_done=0, order=41)
    write_run(fixture_runs, "q-2", quick(depth=20), "queued", epochs_done=0, order=42)
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    app.queue_order = ["q-1", "q-2"]
    app.took_poll = lambda scans, order, files=None: None  # keep the folder's queue order as set (no scheduler here)
    started = None
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            grid = ["r20-A", "q-1", "q-2"]
            app.grids.update({r: grid for r in grid})
            monitor = await open_monitor(pilot, "r20-A")
            assert monitor.run_id == "q-1"            # r20-A has ended: the next run of the grid, which waits
            for _ in range(3):
                monitor.refresh_view()
                await pilot.pause()
            assert monitor.run_id == "q-1", "a run waiting in the folder's queue is not an ended run"
            assert "grid 2/3, following" in screen_text(app) and "in the queue at position 1" in screen_text(app)
            shutil.rmtree(fixture_runs / "q-2")
            started = add_running(fixture_runs, "q-2", order=42)   # the scheduler started q-2 first
            app.watcher.poll(only="q-2")
            monitor.refresh_view()
            await pilot.pause()
            assert monitor.run_id == "q-2" and "grid 3/3, following" in screen_text(app)
    finally:
        if started is not None:
            started.release_lock()


async def test_a_run_about_to_start_in_the_app_does_not_say_press_r(fixture_runs):
    write_run(fixture_runs, "fresh", quick(depth=20), "queued", epochs_done=0, order=40)
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.in_app.append("fresh")                     # first in this app's queue: its trainer is starting
        await open_monitor(pilot, "fresh")
        text = screen_text(app)
        assert "press r to start" not in text and "starting in this app" in text


def test_the_epoch_bar_agrees_with_its_count_at_an_epoch_start(tmp_path):
    """status.json says epoch 1 of 12 is done (step 50); the last Progress event came at that very step, with 50/50
    of the finished epoch: the bar must be empty for epoch 2, not full."""
    run = write_run(tmp_path, "r", quick(depth=20, epochs=12), "running", epochs_done=1)
    info = run.info()
    stale = Progress("r", epoch=1, total_epochs=12, iter_in_epoch=50, iters_per_epoch=50, step=50, total_steps=600)
    assert position(info, stale) == (2, 0, 50, 50, 600)
    later = Progress("r", epoch=2, total_epochs=12, iter_in_epoch=7, iters_per_epoch=50, step=57, total_steps=600)
    assert position(info, later)[:2] == (2, 7)


async def test_esc_from_a_detail_opened_in_the_monitor_goes_back_to_it(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        monitor = await open_monitor(pilot, "r110-stopped")
        await pilot.press("i")
        assert type(app.screen).__name__ == "DetailScreen"
        await pilot.press("escape")
        assert app.screen is monitor


async def test_a_grid_launched_in_the_app_is_followed_to_its_last_run(tmp_path):
    """The form launches a grid through app.launch; the monitor opened on its first run must move on when that run
    ends (the grid was never recorded: the monitor stayed on the finished first run)."""
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        ids = await launched(pilot, [tiny_config(name="g-a", epochs=1, channels_last="off"),
                                     tiny_config(name="g-b", epochs=1, channels_last="off")])
        assert ids == ["g-a", "g-b"]
        monitor = await open_monitor(pilot, "g-a")
        await wait_for(pilot, lambda: monitor.run_id == "g-b", 90, "the monitor to follow the grid to g-b")
        assert app.screen is monitor and "grid 2/2" in screen_text(app)
        # one toast per run end: the monitor's 'g-a finished; following g-b' stacked on the app's 'Run ended' (a
        # grid of short runs piled them over the monitor); its title already says what it follows
        await pilot.pause(0.3)
        assert len([n for n in app._notifications if "g-a" in n.message]) == 1, list(app._notifications)
        await wait_for(pilot, lambda: app.watcher.infos["g-b"].state == "finished", 90, "g-b to finish")


async def test_the_grid_position_stays_in_view_on_a_narrow_terminal(fixture_runs):
    """At 80 columns the title (run id, model, state, pid, grid position) was cut at 'grid 2/3,': it wraps now."""
    live = add_running(fixture_runs)
    try:
        app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            app.grids.update({r: ["r20-A", "r44-live", "r56-A"] for r in ("r20-A", "r44-live", "r56-A")})
            await open_monitor(pilot, "r44-live")
            assert "grid 2/3, following" in " ".join(screen_text(app).split())
    finally:
        live.release_lock()


async def test_the_stats_line_and_the_loss_chart_name_the_same_loss(fixture_runs):
    """The stats line read the trainer's last Progress event (sent about once a second) or status.json while the
    chart read steps.jsonl: 'loss 0.42' above 'training loss 0.3073'. Both read the newest logged window now."""
    live = add_running(fixture_runs)
    try:
        app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            monitor = await open_monitor(pilot, "r44-live")
            title = monitor.query_one("#loss-plot").title            # 'training loss 0.3073 (lowest ...)'
            newest = title.split()[2]
            assert f"loss {newest}  ·" in str(monitor.query_one("#stats").render()), (title, screen_text(app))
    finally:
        live.release_lock()


async def test_the_footer_offers_continue_for_a_paused_run(fixture_runs):
    """A paused run's monitor footer read 's Stop  p Pause  i Detail': nothing said how to continue it (p does),
    seen in tmux at 100x30 after pausing a run of a grid; the detail screen's footer said the same."""
    live = add_running(fixture_runs)
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await open_monitor(pilot, "r44-live")
        footer = lambda: screen_text(app).splitlines()[-1]
        assert "p Pause" in footer() and "Continue" not in footer(), footer()
        live.write_status({**live.read_status(), "state": "paused"})
        await wait_for(pilot, lambda: "p Continue" in footer(), 5, "p Continue in the footer")
        assert "Pause" not in footer(), footer()
        await pilot.press("p")
        assert live.read_request() == "continue"
        app.open_run("r44-live", "detail")
        await wait_for(pilot, lambda: "Run r44-live" in screen_text(app), 5, "the detail")
        await wait_for(pilot, lambda: "p Continue" in footer(), 5, "p Continue in the detail's footer")


async def test_a_paused_run_shows_no_eta(fixture_runs):
    """Paused, the monitor kept 'ETA 35s' beside the run's bar, a time that never came closer (tmux 100x30)."""
    live = add_running(fixture_runs)
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await open_monitor(pilot, "r44-live")
        await wait_for(pilot, lambda: "ETA" in screen_text(app), 5, "an ETA while it runs")
        live.write_status({**live.read_status(), "state": "paused"})
        await wait_for(pilot, lambda: "paused" in screen_text(app).splitlines()[0], 5, "paused in the title")
        assert "ETA" not in screen_text(app)
