"""The event loop reads no run folder while the app watches the runs folder (screens/poller.py): a run another
process adds, and one whose state another process changes, reach the table while every stat, listing and open of a
path under the runs folder made on the event loop's thread is recorded (and refused). And a background worker's
error is told, not lost (screens/widgets/worker_errors.py)."""
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
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: "r20-A" in app.watcher.infos, 10, "the first rows")
        await pilot.pause()
        io_on_loop = LoopIO(monkeypatch, fixture_runs.resolve(), threading.current_thread())
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
