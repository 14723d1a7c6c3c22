"""The event loop reads no run folder while the app watches the runs folder (screens/poller.py): a run another
process adds, and one whose state another process changes, reach the table while every stat, listing and open of a
path under the runs folder made on the event loop's thread is recorded (and refused); the run screens draw the files
the poller read; the actions a user asks (stop, pause, resume, launch, delete, a note, extend, the queue's keys) do
their file work in the actions thread. And a background worker's error is told (screens/widgets/worker_errors.py)."""
from __future__ import annotations

import builtins
import io
import os
import threading

from screens.app import make_app

from .fixtures import quick, write_run
from .helpers import POLL, wait_for


class LoopIO:
    """Patches os.stat, os.lstat, os.scandir, os.open and open to record a call on ``thread`` for a path under
    ``root``, and to refuse it (OSError), as a file system that hangs would leave the UI frozen."""

    def __init__(self, monkeypatch, root, thread):
        self.root, self.thread, self.calls = str(root), thread, []
        for module, name in ((os, "stat"), (os, "lstat"), (os, "scandir"), (os, "open"), (builtins, "open"),
                             (io, "open")):
            monkeypatch.setattr(module, name, self.guard(getattr(module, name), name))

    def guard(self, real, name):
        def call(path=".", *args, **kwargs):
            if threading.current_thread() is self.thread and isinstance(path, (str, bytes, os.PathLike)) \
                    and os.fsdecode(os.fspath(path)).startswith(self.root):
                self.calls.append(f"{name}({os.fspath(path)})")
                raise OSError(f"run-folder I/O on the event loop: {name}")
            return real(path, *args, **kwargs)
        return call


def in_another_thread(fn) -> None:
    """What another process does to the folder (done in a thread: the test's own code runs on the event loop)."""
    box = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    thread.join(30)
    assert box, "the writer thread failed"


async def test_the_event_loop_reads_no_run_folder_while_runs_change(fixture_runs, monkeypatch):
    io_on_loop = LoopIO(monkeypatch, fixture_runs.resolve(), threading.current_thread())     # from the start
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "r20-A" in app.watcher.infos, 10, "the first rows")
        await pilot.pause()
        in_another_thread(lambda: write_run(fixture_runs, "added-later", quick(depth=32), "finished",
                                            epochs_done=12, order=90))
        await wait_for(pilot, lambda: "added-later" in app.watcher.infos, 10, "the added run in the table")
        in_another_thread(lambda: app.store.get("added-later").update_status(state="stopped"))
        await wait_for(pilot, lambda: app.watcher.infos["added-later"].state == "stopped", 30, "the new state")
        for _ in range(3):                       # and a few idle polls
            app.poll_runs()
            await pilot.pause(POLL)
        monkeypatch.undo()
        assert io_on_loop.calls == []


async def test_a_failing_worker_and_a_failing_read_are_told(fixture_runs, monkeypatch):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()

        def broken():
            raise ValueError("the report's figure")

        app.run_worker(broken, thread=True, exit_on_error=False, description="writing the report")
        await wait_for(pilot, lambda: any("writing the report failed: ValueError: the report's figure" in n.message
                                          for n in app._notifications), 10, "the worker's error told")
        monkeypatch.setattr(app.watcher, "scan", lambda *a, **k: (_ for _ in ()).throw(PermissionError("denied")))
        await wait_for(pilot, lambda: any("failed: PermissionError: denied; trying again" in n.message
                                          for n in app._notifications), 10, "the read's error told")
        told = sum("PermissionError" in n.message for n in app._notifications)
        await pilot.pause(5 * POLL)
        assert sum("PermissionError" in n.message for n in app._notifications) == told, "told once, not every poll"
        monkeypatch.undo()
        in_another_thread(lambda: write_run(fixture_runs, "after-the-failure", quick(depth=32), "finished",
                                            epochs_done=12, order=91))
        await wait_for(pilot, lambda: "after-the-failure" in app.watcher.infos, 10, "reading again once it works")


async def test_the_run_screens_draw_files_read_off_the_event_loop(fixture_runs, monkeypatch):
    """The detail, monitor and compare screens draw curves, epochs, events and checkpoint from the poller's reading
    of the files (screens/run_files.py): none is read on the event loop, and an epoch another process appends
    reaches the open screen."""
    from screens.compare import CompareScreen
    from screens.detail import DetailScreen
    from screens.monitor import MonitorScreen
    from screens.widgets.curve_plot import CurvePlot

    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "r20-A" in app.watcher.infos, 10, "the first rows")
        await pilot.pause()
        io_on_loop = LoopIO(monkeypatch, fixture_runs.resolve(), threading.current_thread())
        compared = ["plain-20", "plain-56", "r20-A", "r56-A"]
        for screen, ids in ((DetailScreen("r20-A"), ["r20-A"]), (MonitorScreen("r20-A"), ["r20-A"]),
                            (CompareScreen(compared), compared)):
            await app.push_screen(screen)
            await wait_for(pilot, lambda ids=ids: all(app.run_files(r).read for r in ids), 10, "the files read")
            await pilot.pause()
            points = sum(len(s.xs) for plot in screen.query(CurvePlot) for s in plot.series)
            assert points > 20, f"{type(screen).__name__}: {points} points drawn"
            if isinstance(screen, DetailScreen):
                drawn = len(app.run_files("r20-A").epochs)

                def another_epoch():
                    with open(fixture_runs / "r20-A" / "epochs.jsonl", "a") as fh:
                        fh.write('{"epoch": 99, "step": 99000, "test_err": 9.5, "train_err": 8.0}\n')

                in_another_thread(another_epoch)
                await wait_for(pilot, lambda n=drawn + 1: len(app.run_files("r20-A").epochs) == n, 10, "the epoch")
                await pilot.pause()
                assert any(99000 in s.xs for s in screen.query_one(CurvePlot).series)
            app.pop_screen()
            await pilot.pause()
        monkeypatch.undo()
        assert io_on_loop.calls == []
        assert not app.followed.followed()          # each screen stopped following its runs when it closed



def told(app, text: str) -> bool:
    return any(text in n.message for n in app._notifications)


def read(fn):
    """What the folder says (read in a thread: the test's own code runs on the event loop, where LoopIO refuses)."""
    box = []
    in_another_thread(lambda: box.append(fn()))
    return box[0]


async def test_stop_pause_resume_launch_and_delete_do_their_file_work_off_the_event_loop(fixture_runs, monkeypatch):
    """Each action's reads and writes of the run folder happen in the App's actions thread (screens/action_thread.py),
    each reaches the folder, and each is told on the screen: stop (its dialog's answer checked against the folder
    again), pause, resume into the queue, a launch (listed when it says it is done), delete."""
    from core.serve import queue as Q
    from core.store.runs import RunStore
    from screens.confirm import ConfirmScreen

    from .fixtures import add_running
    from .helpers import launched

    live = add_running(fixture_runs)
    (queued,) = Q.enqueue(RunStore(fixture_runs), [quick(depth=20, name="from-the-queue")])
    Q.write_entry(queued, {**Q.read_entry(queued), "position": None})
    queued.update_status(state="stopped")                  # a queue's run a scheduler started, then stopped
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_scheduler = lambda: None                 # no scheduler process in this test
        await wait_for(pilot, lambda: {live.id, queued.id} <= set(app.watcher.infos), 10, "the runs")
        await pilot.pause()
        io_on_loop = LoopIO(monkeypatch, fixture_runs.resolve(), threading.current_thread())
        app.confirm_stop(live.id)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the stop question")
        app.screen.dismiss("stop")
        await wait_for(pilot, lambda: told(app, f"stopping {live.id}"), 10, "the stop told")
        assert read(live.read_request) == "stop"
        app.toggle_pause(live.id)
        await wait_for(pilot, lambda: told(app, f"{live.id}: pause requested"), 10, "the pause told")
        assert read(live.read_request) == "pause"

        assert app.resume_run(queued.id, where="auto")     # launched into the queue: back to the queue
        await wait_for(pilot, lambda: told(app, f"{queued.id} is queued"), 10, "the requeue told")
        assert read(lambda: [q.run.id for q in Q.queued(app.store)]) == [queued.id]
        assert await launched(pilot, [quick(depth=20, name="launched-here")], where="queue") == ["launched-here"]
        assert "launched-here" in app.watcher.infos        # listed by the time the launch says it is done

        app.confirm_delete("plain-20")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the delete question")
        app.screen.dismiss("delete")
        await wait_for(pilot, lambda: told(app, "deleted plain-20") and "plain-20" not in app.watcher.infos, 10,
                       "the run deleted")
        monkeypatch.undo()
        assert io_on_loop.calls == []
        assert not (fixture_runs / "plain-20").exists()


async def test_a_note_an_extend_and_the_queue_screen_do_their_file_work_off_the_event_loop(fixture_runs, monkeypatch):
    """The note dialog's save, extend (then resumed into the queue) and the queue screen's rows and its remove key:
    no run-folder I/O on the event loop, and each reaches the folder."""
    from screens.detail import DetailScreen
    from screens.queue_devices import QueueScreen
    from screens.widgets.extend_dialog import ExtendScreen
    from screens.widgets.notes_dialog import NotesScreen

    from .helpers import press

    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_scheduler = lambda: None                 # no scheduler process in this test
        await wait_for(pilot, lambda: "r20-A" in app.watcher.infos, 10, "the runs")
        await pilot.pause()
        io_on_loop = LoopIO(monkeypatch, fixture_runs.resolve(), threading.current_thread())
        app.open_run("r20-A", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen) and app.run_files("r20-A").read, 10,
                       "the detail and its files")
        await press(pilot, "t")
        await wait_for(pilot, lambda: isinstance(app.screen, NotesScreen), 5, "the notes dialog")
        await press(pilot, *"best", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 10, "the note saved")
        assert read(lambda: (fixture_runs / "r20-A" / "notes.json").read_text()).count("best") == 1
        app.screen.action_extend()
        await wait_for(pilot, lambda: isinstance(app.screen, ExtendScreen), 5, "the extend dialog")
        app.screen.dismiss((20, "queue"))
        await wait_for(pilot, lambda: told(app, "r20-A is queued"), 10, "the extended run queued")
        assert app.watcher.infos["r20-A"].total_epochs == 20

        app.open_queue()
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.rows, 10, "the queue")
        app.screen.query_one("#queue-table").move_cursor(row=[r["id"] for r in app.screen.rows].index("r20-A"))
        await press(pilot, "x")
        await wait_for(pilot, lambda: told(app, "r20-A left the queue"), 10, "the run taken out of the queue")
        await wait_for(pilot, lambda: not any(r["position"] for r in app.screen.rows), 10, "the rows read again")
        monkeypatch.undo()
        assert io_on_loop.calls == []
