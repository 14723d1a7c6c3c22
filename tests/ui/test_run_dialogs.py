"""Issue 34, item 9: dialogs and keys offer only what the run's state allows (core/store/rules.py), as the run's
folder says now; a stopped queue run resumed with r goes next."""
from __future__ import annotations

import os
import shutil
import socket

from core.serve import queue as Q
from core.store.runs import Run
from screens.app import make_app
from screens.confirm import ConfirmScreen
from screens.detail import DetailScreen
from screens.monitor import MonitorScreen

from .fixtures import add_running, quick
from .helpers import POLL, screen_text, wait_for

SLOW = 60.0     # the app's poll, made too slow to notice what changed in the folder before the key comes


def notes(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_delete_of_a_run_that_is_running_now_is_refused_without_asking(fixture_runs):
    """The table still said queued (polled before it started): `d` asked "Delete?" and refused only after yes."""
    run = Run(fixture_runs / "r20-A")
    app = make_app(runs_dir=fixture_runs, poll_interval=SLOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        run.acquire_lock()                               # a scheduler started it since the last poll
        try:
            run.update_status(state="running", pid=os.getpid(), host=socket.gethostname())
            app.confirm_delete("r20-A")
            await wait_for(pilot, lambda: any("r20-A is running; stop it before deleting" in m for m in notes(app)),
                           10, "the refusal")
            assert not isinstance(app.screen, ConfirmScreen)
        finally:
            run.release_lock()
    assert run.path.exists()


async def test_a_stop_confirmed_after_the_run_ended_says_so_and_requests_nothing(fixture_runs):
    live = add_running(fixture_runs)
    app = make_app(runs_dir=fixture_runs, poll_interval=SLOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.confirm_stop(live.id)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the stop question")
        live.update_status(state="finished")             # it ended while the question was open
        live.release_lock()
        app.screen.dismiss("stop")
        await wait_for(pilot, lambda: any("nothing to stop" in m for m in notes(app)), 10, "the refusal")
        assert not any(m.startswith("stopping") for m in notes(app)), notes(app)
        assert any("is not running (state: finished); nothing to stop" in m for m in notes(app)), notes(app)
        assert live.read_request() is None


async def test_a_deleted_runs_detail_offers_nothing_to_do_with_it(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_run("r110-stopped", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        screen = app.screen
        assert screen.check_action("resume", ()) and screen.query_one("#actions").display
        shutil.rmtree(fixture_runs / "r110-stopped")       # deleted from another terminal
        await wait_for(pilot, lambda: "no longer exists" in str(screen.query_one("#title").render()), 10, "gone")
        assert not screen.query_one("#actions").display
        for action in ("resume", "extend", "delete", "clone", "stop"):
            assert not screen.check_action(action, ()), action


async def test_a_queued_runs_monitor_offers_no_resume_and_a_stopped_queue_run_resumed_goes_next(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_scheduler = lambda: None               # no scheduler process in this test
        a, b, c = Q.enqueue(app.store, [quick(depth=20, seed=s, epochs=2) for s in (1, 2, 3)])
        app.poll_runs()
        await wait_for(pilot, lambda: b.id in app.watcher.infos, 10, "the poll to read the queued runs")
        app.open_run(b.id, "monitor")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the monitor")
        assert not app.screen.check_action("resume", ())
        assert not app.resume_run(b.id, where="auto")      # r says why instead
        await pilot.pause()
        assert any("is queued already" in m for m in notes(app)), notes(app)
        # a was started by the scheduler and stopped: r puts it back first, not behind b and c
        Q.write_entry(a, {**Q.read_entry(a), "position": None})
        a.update_status(state="stopped", in_queue=False)
        await wait_for(pilot, lambda: app.watcher.infos[a.id].state == "stopped", 10, "the stopped run")
        assert app.resume_run(a.id, where="auto")
        await wait_for(pilot, lambda: any(f"{a.id} is queued" in m for m in notes(app)), 10, "the requeue")
        assert [q.run.id for q in Q.queued(app.store)] == [a.id, b.id, c.id]


async def test_a_stop_during_a_compile_is_shown_pending_and_the_cli_returns_at_once(fixture_runs, capsys):
    """Issue 34, item 5: `stop RUN` blocked 14.8 s until a 17.5 s compile ended; the TUI showed 'running (compiling)'
    with no sign of the pending stop."""
    from cli.main import main

    live = add_running(fixture_runs)
    live.update_status(compiling=True, host=socket.gethostname(), pid=os.getpid())
    assert main(["stop", live.id, "--runs-dir", str(fixture_runs)]) == 0       # at once, not after the compile
    assert "it is compiling: it stops once the compile ends" in capsys.readouterr().out
    assert live.read_request() == "stop"
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.open_run(live.id, "monitor")
        await wait_for(pilot, lambda: "compiling · stop requested: after the compile" in screen_text(app), 10,
                       "the pending stop")
        live.update_status(compile_stop="now")     # a trainer of its own process abandons the compile at a stop
        await wait_for(pilot, lambda: "compiling · stopping: the compile is abandoned" in screen_text(app), 10,
                       "the stop that does not wait")


async def test_a_read_only_runs_folder_gets_plain_messages_never_raw_oserror_texts(fixture_runs, monkeypatch):
    # issue 35, item 11: stop, pause and delete on a read-only folder showed '[Errno 30] ...'
    # (or ended the app: an OSError nobody caught)
    import errno

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(fixture_runs / "x"))

    live = add_running(fixture_runs)
    monkeypatch.setattr(Run, "request", read_only)
    monkeypatch.setattr("core.store.runs.RunStore.delete", read_only)
    app = make_app(runs_dir=fixture_runs, poll_interval=SLOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.stop_run(live.id)
        app.toggle_pause(live.id)
        await wait_for(pilot, lambda: len([m for m in notes(app) if "read-only" in m]) == 2, 10, "both told")
        said = [m for m in notes(app) if "read-only" in m]
        assert len(said) == 2 and all("make it writable" in m for m in said), notes(app)
        assert said[0].startswith(f"cannot stop {live.id}: ") and said[1].startswith(f"cannot ask {live.id} to pause")
        assert not any("Errno" in m for m in notes(app)), notes(app)
        app.confirm_delete("r20-A")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the delete question")
        app.screen.dismiss("delete")
        await wait_for(pilot, lambda: any(m.startswith("cannot delete r20-A: ") for m in notes(app)), 5, "the delete")
        said = [m for m in notes(app) if m.startswith("cannot delete r20-A: ")]
        assert "is read-only (Read-only file system): make it writable and delete it again" in said[0], said
        assert not any("Errno" in m for m in notes(app)), notes(app)
    live.release_lock()


async def test_a_run_only_the_queue_lost_is_offered_the_resume_its_r_key_gives(fixture_runs):
    """A queued run whose queue.json is damaged lists as damaged, yet trains as it is (resume RUN; the r key, asking
    core/store/rules.py). The detail screen's resume buttons once hid for every damaged run, restating the rule."""
    from core.store.runs import RunStore

    (lost,) = Q.enqueue(RunStore(fixture_runs), [quick(name="lost")])
    (lost.path / Q.QUEUE_FILE).write_text("{not json")
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_run(lost.id, "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        screen = app.screen
        info = app.watcher.infos[lost.id]
        assert info.state == "damaged" and info.unqueued
        assert screen.check_action("resume", ())
        for button in ("#resume", "#resume-bg"):
            assert screen.query_one(button).display and not screen.query_one(button).disabled, button
        assert not screen.check_action("extend", ()) and not screen.query_one("#extend").display
        assert "none yet (a fresh start when resumed)" in screen_text(app)     # not "resume --repair cannot ..."
