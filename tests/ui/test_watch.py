"""The TUI's watcher in a lab's runs folder (issue 21, point 10): the first poll reads a screenful (newest first) and
leaves the rest for a thread; an idle poll looks at few files; nothing is missed, only seen a few polls later."""
from __future__ import annotations

import json
import os

from core.store.info import RunInfo
from core.store.runs import Run, RunStore
from screens import watch
from screens.watch import RunWatcher

from .fixtures import quick, write_run


def make(root, n):
    for i in range(n):
        write_run(root, f"r{i:03d}", quick(depth=20), "finished", epochs_done=2, order=i)
        os.utime(root / f"r{i:03d}", ns=(i * 10**9, i * 10**9))      # r000 oldest ... newest last


def test_a_budgeted_poll_reads_the_newest_and_leaves_the_rest_pending(tmp_path):
    root = tmp_path / "runs"
    make(root, 12)
    w = RunWatcher(RunStore(root))
    changed = w.poll(budget=5)
    assert set(w.infos) == changed == {f"r{i:03d}" for i in range(7, 12)}        # the 5 newest
    assert sorted(w.pending) == [f"r{i:03d}" for i in range(7)]
    assert w.poll() == set() and len(w.infos) == 5          # a later poll leaves them to the reader
    added = w.apply(w.read(w.pending[:4]))
    assert len(added) == 4 and len(w.infos) == 9 and len(w.pending) == 3
    w.apply(w.read(list(w.pending)))
    assert len(w.infos) == 12 and not w.pending


def watched(tmp_path, monkeypatch, runs: int):
    """A folder of ``runs`` ended runs, a watcher that has read them all, and the list of the folders whose files
    each poll looks at from now on."""
    root = tmp_path / "runs"
    make(root, runs)
    w = RunWatcher(RunStore(root))
    w.poll()
    looked: list[str] = []
    real = watch._signature
    monkeypatch.setattr(watch, "_signature", lambda path: looked.append(path) or real(path))
    return root, w, looked


def test_an_ended_run_changed_elsewhere_is_seen_within_a_round_of_polls(tmp_path, monkeypatch):
    root, w, looked = watched(tmp_path, monkeypatch, 6)
    w.poll()
    assert len(looked) < 6, "an idle poll looks at a slice of the ended runs, not all"
    Run(root / "r003").update_status(state="stopped")      # resumed-then-stopped from another process, say
    seen = set()
    for _ in range(watch.SLICES):
        seen |= w.poll()
    assert "r003" in seen and w.infos["r003"].state == "stopped"


def test_an_idle_round_of_polls_looks_at_ended_folders_not_their_files(tmp_path, monkeypatch):
    """Issue 21, point 10 (idle CPU at 2,000 runs): an ended run's four files are looked at on every DEEP-th turn,
    its folder's mtime on the others; a file edited in place (no rename, the folder unchanged) shows by then."""
    root, w, looked = watched(tmp_path, monkeypatch, 10)
    for _ in range(watch.SLICES):
        w.poll()
    assert len(looked) <= 6, looked     # those whose turn was a deep look (1 in DEEP); before, all 10 every round
    status = root / "r004" / "status.json"
    text = status.read_text().replace('"finished"', '"stopped"')
    with open(status, "r+") as fh:                               # edited in place: the folder's mtime stays
        fh.write(text)
        fh.truncate()
    seen = set()
    for _ in range(watch.SLICES * watch.DEEP):
        seen |= w.poll()
    assert "r004" in seen and w.infos["r004"].state == "stopped"


def test_a_new_folder_and_a_deleted_one_are_seen_at_the_next_poll(tmp_path):
    root = tmp_path / "runs"
    make(root, 3)
    w = RunWatcher(RunStore(root))
    w.poll()
    write_run(root, "fresh", quick(depth=20), "queued", epochs_done=0, order=9)
    RunStore(root).delete("r000")
    assert w.poll() == {"fresh", "r000"} and "r000" not in w.infos and "fresh" in w.infos


STARTUP_PROBE = """
import asyncio, sys, time
from screens.app import ResLabApp

order = [("imported", "torch" in sys.modules, "numpy" in sys.modules)]


ready = getattr(ResLabApp, "on_ready", lambda self: None)


def on_ready(self):
    order.append(("ready", "torch" in sys.modules, self.screen.query_one("#table").row_count))
    ready(self)


ResLabApp.on_ready = on_ready      # the class itself: a subclass here would look for its CSS beside this script
ResLabApp._preload_engine = lambda self: order.append(("preload", "torch" in sys.modules,
                                                       getattr(self, "first_drawn", None)))
ResLabApp._read_the_rest = lambda self, *todo: order.append(("read the rest", len(self.watcher.infos),
                                                      len(self.watcher.pending))) or self._preload_engine()


async def main():
    app = ResLabApp(runs_dir=sys.argv[1])
    async with app.run_test(size=(100, 30)) as pilot:
        deadline = time.monotonic() + 30
        while len(order) < 4 and time.monotonic() < deadline:
            await pilot.pause(0.01)
    print(order)

asyncio.run(main())
"""


def test_the_runs_table_is_drawn_before_torch_and_the_other_folders_are_read(tmp_path):
    """Issue 21, point 4: torch's import in the background thread took the GIL for seconds before the table's first
    frame (it began in on_mount). The app's module imports neither torch nor numpy; the import, and the reading of
    the folders the first poll left, begin once the first frame is drawn (Ready). A fresh interpreter: other tests
    have imported torch in this one."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path / "runs"
    make(root, 7)
    repo = Path(__file__).resolve().parents[2]
    script = STARTUP_PROBE.replace("from screens.app import ResLabApp",
                                   "import screens.app\nscreens.app.FIRST_READ = 3\nfrom screens.app import ResLabApp")
    env = {**os.environ, "PYTHONPATH": str(repo), "RESLAB_CONFIG_DIR": str(tmp_path / "config"),
           "RESLAB_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", script, str(root)], cwd=repo, capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    order = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert order[0] == ("imported", False, False)
    assert order[1] == ("ready", False, 3)              # the first frame: the 3 newest runs, no torch yet
    assert set(order[2:]) == {("read the rest", 3, 4), ("preload", False, True)}


def test_a_run_opened_again_reads_only_what_was_appended_and_keeps_a_diverged_runs_nan_rows(tmp_path):
    """Issue 34, item 11: the detail parsed a 164-epoch run's 6,400 steps.jsonl lines on every opening; its reader
    is kept after the screen closes (screens/run_files.py: only appended lines are read again; opened again, its
    last reading is posted at once) and decoded with orjson (a line it refuses goes to json, and a NaN loss is
    skipped as before: not a row a curve can draw)."""
    from screens.run_files import FollowedFiles

    path = tmp_path / "r1" / "steps.jsonl"
    path.parent.mkdir()
    path.write_text('{"step": 1, "epoch": 1, "loss": 2.3, "err": 90.0, "lr": 0.1}\n'
                    '{"step": 2, "epoch": 1, "loss": NaN, "err": 90.0, "lr": 0.1}\nnot json\n')
    files = FollowedFiles(tmp_path)
    files.follow("r1")
    assert [r["step"] for r in files.read()["r1"].steps] == [1]
    tail = files._readers["r1"].steps
    assert files.read() == {}                                     # nothing changed: no new reading
    files.unfollow("r1")
    files.follow("r1")                                            # opened again: its last reading, nothing re-read
    assert [r["step"] for r in files.read()["r1"].steps] == [1] and files._readers["r1"].steps is tail
    assert not tail.read()
    with path.open("a") as fh:
        fh.write('{"step": 3, "epoch": 1, "loss": 2.1, "err": 80.0, "lr": 0.1}\n')
    assert [r["step"] for r in files.read()["r1"].steps] == [1, 3]
    path.unlink()
    path.write_text('{"step": 1, "epoch": 1, "loss": 2.3, "err": 90.0, "lr": 0.1}\n')     # a resume rewrote it
    assert [r["step"] for r in files.read()["r1"].steps] == [1]


def test_a_scan_taken_in_late_never_replaces_a_newer_reading(tmp_path):
    """The poller's thread scans while an action reads one run at once (``poll_runs(now=True)``, e.g. a run just
    extended): the thread's scan, begun before, must not put the older state back when it is taken in."""
    root = tmp_path / "runs"
    make(root, 3)
    w = RunWatcher(RunStore(root))
    w.poll()
    Run(root / "r001").update_status(state="stopped")
    early = w.scan("r001")                                  # the thread's scan: begun now...
    Run(root / "r001").update_status(state="finished")
    w.apply_scan(w.scan("r001"))                            # ...the action's reading, taken in first
    assert w.infos["r001"].state == "finished"
    w.apply_scan(early)
    assert w.infos["r001"].state == "finished", "the older reading came back"
    Run(root / "r001").update_status(state="stopped")
    w.apply_scan(w.scan("r001"))                            # a scan begun after it is taken in as usual
    assert w.infos["r001"].state == "stopped"


def test_the_whole_table_shows_from_the_index_at_once_then_each_changed_folder_is_corrected(tmp_path, monkeypatch):
    """The app's table of a lab's folder: the index's rows first (no folder checked), then ``read`` checks every
    folder; a run changed since its row was written is corrected, and polls leave unchecked runs to that check."""
    from core.store import index as index_mod
    from tests.core.store.test_index import age

    monkeypatch.setenv(index_mod.MIN_RUNS_ENV, "1")
    root = tmp_path / "runs"
    make(root, 12)
    age(root)
    first = RunWatcher(RunStore(root))
    first.poll(budget=0)
    first.apply(first.read(list(first.pending)))          # the index holds a row of every run now
    changed = Run(root / "r003")
    changed.update_status(state="stopped")                # after its row was written
    edited = root / "r005" / "epochs.jsonl"               # an epoch's error edited in place: as many epochs as before
    rows = edited.read_text().splitlines()
    last = json.loads(rows[-1])
    rows[-1] = json.dumps({**last, "test_err": 42.5})
    edited.write_text("\n".join(rows) + "\n")
    age(root)

    w = RunWatcher(RunStore(root))
    w.poll(budget=0)
    added = w.apply(w.read_cached(list(w.pending)), verified=False)
    assert len(added) == 12 and not w.pending and len(w.infos) == 12
    assert w.infos["r003"].state == "finished" and w.unverified == set(added)        # the row, not yet the folder
    reads = []
    monkeypatch.setattr(Run, "info", lambda run: reads.append(run.id) or RunInfo.read(run))
    for _ in range(watch.SLICES * watch.DEEP):
        w.poll()
    assert not reads and w.infos["r003"].state == "finished"     # left to ``read``: no poll reads 12 folders whole
    rows_said = dict(w.infos)
    corrected = w.apply(w.read(sorted(w.unverified)))
    assert corrected == {"r003", "r005"} and w.infos["r003"].state == "stopped" and not w.unverified
    assert w.infos["r005"].final_test_err == 42.5
    # a row the folder bore out stays the very RunInfo shown: the table's cells and the filter's words stay made
    assert all(w.infos[r] is rows_said[r] for r in rows_said if r not in corrected)


WATCH_ONLY_PROBE = """
import asyncio, sys, time
from screens.app import make_app
from screens.detail import DetailScreen


async def main():
    app = make_app(runs_dir=sys.argv[1], poll_interval=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.5)
        await app.push_screen(DetailScreen("r003"))
        deadline = time.monotonic() + 30
        while not app.run_files("r003").read and time.monotonic() < deadline:
            await pilot.pause(0.05)
        await pilot.pause(1.0)          # a few polls, the other screens' modules imported
        print(app.run_files("r003").read, "torch" in sys.modules)

asyncio.run(main())
"""


def test_an_app_that_only_watches_never_imports_torch(tmp_path):
    """torch and the trainer (~490 MB resident) are imported when the form opens or a run trains here, not for a
    table and a run's detail (its layer responses are read without torch: core/results/response_file.py). A fresh
    interpreter: other tests have imported torch in this one."""
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path / "runs"
    make(root, 5)
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo), "RESLAB_CONFIG_DIR": str(tmp_path / "config"),
           "RESLAB_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", WATCH_ONLY_PROBE, str(root)], cwd=repo, capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["True", "False"], out.stdout
