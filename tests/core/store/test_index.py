"""The runs folder's index (core/store/index.py) is only ever a cache: whatever happens to the folders and to the
index file, a listing through it equals the listing read from the folders alone."""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.store import folder_check, index_rows, reader
from core.store import index as index_mod
from core.store.info import RunInfo, oldest_first, run_summary_row
from core.store.runs import RunStore
from tests.conftest import ROOT, tiny_config


@pytest.fixture(autouse=True)
def _index_every_folder(monkeypatch):
    monkeypatch.setenv(index_mod.MIN_RUNS_ENV, "1")
    monkeypatch.setattr(reader, "MAX_ROWS_BYTES", 1000)    # a steps.jsonl "too large" within a few appends


def age(root: Path, seconds: float = 10.0) -> None:
    """Every file and folder under ``root`` made ``seconds`` older (time passing, without waiting for it): rows are
    cached only for files older than a clock tick or two (core/store/index.py RACY_NS)."""
    for path in [root, *root.rglob("*")]:
        st = os.lstat(path)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)), follow_symlinks=False)


def summary(infos) -> list[tuple]:
    return [(i.id, i.state, i.damaged, json.dumps(run_summary_row(i), sort_keys=True, default=str), len(i.epochs))
            for i in oldest_first(infos)]


def direct(store: RunStore) -> list[tuple]:
    return summary(RunInfo.read(run) for run in store.runs())


def indexed(store: RunStore) -> list[tuple]:
    return summary(store.list())


def direct_rows(store: RunStore) -> list[dict]:
    return [json.loads(json.dumps(run_summary_row(i), default=str))
            for i in oldest_first(RunInfo.read(run) for run in store.runs())]


def listed(store: RunStore) -> list[dict]:
    """What `runs` lists: the index's own summary line of each run it keeps settled, the others made afresh."""
    return [json.loads(line) for line in store.summary_lines()]


EPOCH = {"epoch": 1, "step": 8, "train_loss": 2.0, "train_err": 80.0, "test_loss": 2.1, "test_err": 81.5, "lr": 0.1,
         "seconds": 1.0, "images_per_s": 100.0}


def _edit_config(store, rng, run, made):
    """By hand, in place (no rename): another lr, a file of another length."""
    path = run.path / "config.json"
    data = json.loads(path.read_text())
    data["lr"] = round(rng.uniform(0.001, 0.5), 6)
    with open(path, "r+") as fh:
        fh.seek(0)
        fh.write(json.dumps(data, indent=1) + " " * rng.randint(0, 3))
        fh.truncate()


def _corrupt_status(store, rng, run, made):
    with open(run.path / "status.json", "r+b") as fh:
        fh.seek(3)
        fh.write(b"\x00garbage")


def _truncate_epochs(store, rng, run, made):
    path = run.path / "epochs.jsonl"
    if path.exists():
        path.write_bytes(path.read_bytes()[: rng.randint(0, 20)])


def _remove_index(store, rng, run, made):
    for p in store.root.glob(".index.sqlite*"):
        p.unlink()


def _add_by_hand(store, rng, run, made):
    """A run folder copied in from elsewhere."""
    dst = store.root / f"{run.path.name}-copy{rng.randint(0, 10**6)}"
    dst.mkdir()
    for f in run.path.iterdir():
        if f.is_file() and f.name != "lock":
            (dst / f.name).write_bytes(f.read_bytes())
    made.append(dst.name)


def _grow_steps(store, rng, run, made):
    """Appended to in place, as a trainer does: past the size ResLab reads, the run is damaged (repairable)."""
    with open(run.path / "steps.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 1, "loss": 2.0, "pad": "x" * rng.randint(300, 1200)}) + "\n")


def _epoch(store, rng, run, made):
    run.update_status(state="stopped", epoch=1, step=8)
    run.append_epoch({**EPOCH, "test_err": rng.uniform(10, 90)})


ACTIONS = {
    "epoch": _epoch,
    "finish": lambda store, rng, run, made: run.update_status(state="finished", epoch=2, step=16,
                                                              elapsed_s=rng.uniform(1, 100)),
    "stop": lambda store, rng, run, made: run.update_status(state="stopped"),
    "delete": lambda store, rng, run, made: store.delete(run.id),
    "edit-config": _edit_config,
    "corrupt-status": _corrupt_status,
    "truncate-epochs": _truncate_epochs,
    "remove-index": _remove_index,
    "garbage-index": lambda store, rng, run, made: (store.root / ".index.sqlite").write_bytes(os.urandom(300)),
    "add-by-hand": _add_by_hand,
    "grow-steps": _grow_steps,
    "shrink-steps": lambda store, rng, run, made: (run.path / "steps.jsonl").open("w").close(),
    "lose-checkpoint": lambda store, rng, run, made: (run.path / "checkpoint.pt").unlink(missing_ok=True),
    "fake-checkpoint": lambda store, rng, run, made: (run.path / "checkpoint.pt").write_bytes(os.urandom(64)),
}


def act(store: RunStore, rng: random.Random, made: list[str]) -> str:
    """One random thing that happens to a runs folder; returns what it was."""
    live = [r for r in made if (store.root / r).is_dir()]
    what = rng.choice(["create", "create", *ACTIONS]) if live else "create"
    if what == "create":
        made.append(store.create(tiny_config(seed=rng.randint(1, 10**6), name=f"r{len(made)}")).id)
    else:
        ACTIONS[what](store, rng, store.get(rng.choice(live)), made)
    return what


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_indexed_listing_equals_the_folders_through_any_history(tmp_path, seed):
    rng = random.Random(seed)
    store = RunStore(tmp_path / "runs")
    made: list[str] = []
    history = []
    for _ in range(60):
        history.append(act(store, rng, made))
        if rng.random() < 0.5:
            age(store.root)
        assert indexed(store) == direct(store), f"after {history}"
        assert listed(store) == direct_rows(store), f"after {history}"
    assert (store.root / ".index.sqlite").exists() and len(made) > 5


def test_unchanged_folders_are_not_read_again(tmp_path):
    store = RunStore(tmp_path)
    runs = [store.create(tiny_config(name=f"r{i}")) for i in range(20)]
    age(tmp_path)
    index = index_mod.RunIndex(tmp_path)
    index.infos(store.runs())
    assert index.reads == 20
    index.infos(store.runs())
    assert index.reads == 0
    runs[3].append_epoch(EPOCH)             # appended in place: the file's size changes
    runs[7].update_status(state="stopped")  # replaced by rename
    assert {i.id for i in index.infos(store.runs())} == {r.id for r in runs} and index.reads == 2


def test_a_stored_signature_is_checked_without_listing_the_folder_and_misses_no_change(tmp_path):
    """``unchanged`` stats the folder and the files its signature names (no scandir): any change a listing would see
    makes it False; a change to a file no summary reads (events.log) does not."""
    store = RunStore(tmp_path)
    run = store.create(tiny_config(name="r"))
    run.append_epoch(EPOCH)
    age(tmp_path)
    path = str(run.path)

    def check(change) -> bool:
        stored = folder_check.signature(path)[0]
        assert folder_check.unchanged(path, stored)
        change()
        return folder_check.unchanged(path, stored)

    with open(run.path / "events.log", "a") as fh:
        assert check(lambda: fh.write("a line\n") and fh.flush())
    assert not check(lambda: run.append_epoch(EPOCH))                           # grown in place
    assert not check(lambda: (run.path / "notes.md").write_text("a note"))     # a file made
    age(tmp_path)
    assert not check(lambda: (run.path / "notes.md").unlink())                 # a file removed
    age(tmp_path)
    assert not check(lambda: run.update_status(state="stopped"))               # replaced by rename
    age(tmp_path)
    assert not check(lambda: os.utime(run.path / "config.json"))               # touched: the same bytes, maybe
    age(tmp_path)
    stored = folder_check.signature(path)[0]
    assert not folder_check.unchanged(path, None) and not folder_check.unchanged(str(tmp_path / "gone"), stored)
    assert not folder_check.unchanged(path, "garbage") and not folder_check.unchanged(path, stored + "|x")


def test_a_line_kept_by_another_release_is_made_afresh_and_the_index_is_not_rebuilt(tmp_path):
    """Two releases sharing a runs folder, or an upgrade: each uses only the summary lines its own code made (another's
    may say a run otherwise) and replaces another's with its own, keeping the rows (no folder read again)."""
    store = RunStore(tmp_path)
    for i in range(3):
        store.create(tiny_config(name=f"r{i}")).update_status(state="stopped")
    age(tmp_path)
    truth = direct_rows(store)
    assert listed(store) == truth and listed(store) == truth          # the second from the kept lines
    db = sqlite3.connect(tmp_path / ".index.sqlite")
    with db:
        db.execute("UPDATE runs SET listed = '{\"id\": \"not this\"}', listed_by = 'another release'")
    db.close()
    index = index_mod.RunIndex(tmp_path)
    assert [json.loads(line) for _, line in sorted(index.lines(store.runs()))] == truth and index.reads == 0
    with sqlite3.connect(tmp_path / ".index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs WHERE listed_by = ?", (index_rows.LINES_VERSION,)).fetchone() \
            == (3,)
    assert [json.loads(line) for _, line in sorted(index.lines(store.runs()))] == truth and index.reads == 0


def test_liveness_is_decided_at_each_listing_never_cached(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny_config())
    run.update_status(state="running", host="elsewhere", updated_at=time.time())
    age(tmp_path, 1000)
    assert [i.state for i in store.list()] == ["running"]
    run.update_status(state="running", host="elsewhere", updated_at=time.time() - 3600)   # the heartbeat stopped
    age(tmp_path, 1000)
    assert [i.state for i in store.list()] == ["crashed"]


def test_a_foreign_version_or_a_locked_index_never_shows(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    for i in range(3):
        store.create(tiny_config(name=f"r{i}"))
    age(tmp_path)
    want = direct(store)
    assert indexed(store) == want
    db = sqlite3.connect(tmp_path / ".index.sqlite")
    db.execute("UPDATE meta SET value = 'from-another-version'")
    db.execute("UPDATE runs SET data = '{}'")      # rows another version wrote: not readable by this one
    db.commit()
    assert indexed(store) == want
    db.execute("UPDATE runs SET data = '{\"state\": 1}'")      # rows this version cannot read: rebuilt
    db.commit()
    assert indexed(store) == want
    db.execute("BEGIN EXCLUSIVE")                  # another process holds it for longer than the busy timeout
    connect = sqlite3.connect
    monkeypatch.setattr(index_mod.sqlite3, "connect", lambda *a, **k: connect(*a, **{**k, "timeout": 0.1}))
    assert indexed(store) == want
    db.rollback()
    db.close()


REFRESHER = """
import sys, time
from core.store.runs import RunStore
store = RunStore(sys.argv[1])
deadline = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < deadline:
    store.list()
    n += 1
print(n)
"""

WRITER = """
import sys, time
from core.store.runs import RunStore
from tests.conftest import tiny_config
store = RunStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    run = store.create(tiny_config(name=f"{sys.argv[3]}{i}"))
    run.update_status(state="finished", epoch=2)
print("done")
"""


def test_two_machines_writing_runs_and_readers_refreshing_at_once_lose_nothing(tmp_path):
    # a runs folder shared by two machines: two processes create runs while two others list (and refresh) the index
    env = {**os.environ, index_mod.MIN_RUNS_ENV: "1", "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", REFRESHER, str(tmp_path), "20"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    procs += [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "25", prefix], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, text=True) for prefix in ("a", "b")]
    outs = [p.communicate(timeout=180)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all(int(o) > 0 for o in outs[:2]) and outs[2:] == ["done\n", "done\n"]
    store = RunStore(tmp_path)
    age(tmp_path)
    listing = indexed(store)
    assert listing == direct(store) and len(listing) == 50
    assert {i[1] for i in listing} == {"finished"}
    db = sqlite3.connect(tmp_path / ".index.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.execute("SELECT count(*) FROM runs").fetchone() == (50,)


def test_a_row_stored_settled_follows_the_files_its_verdict_comes_from(tmp_path):
    """Rows of ended runs are stored settled: a steps.jsonl grown past what ResLab reads (appended in place, the
    folder's mtime unchanged) or a checkpoint.pt lost must still change the listing at once."""
    store = RunStore(tmp_path / "runs")
    run = store.create(tiny_config(name="ended"))
    run.update_status(state="stopped", epoch=1, step=8)
    run.append_epoch(EPOCH)
    (run.path / "checkpoint.pt").write_bytes(b"not read here")
    (run.path / "steps.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    age(store.root)
    assert indexed(store) == direct(store)
    assert indexed(store) == direct(store) and store.list()[0].state != "damaged"    # now from the stored row
    with open(run.path / "steps.jsonl", "a") as fh:
        fh.write("x" * 1200 + "\n")
    assert store.list()[0].repairable and indexed(store) == direct(store)
    (run.path / "steps.jsonl").open("w").close()
    age(store.root)
    assert indexed(store) == direct(store)
    (run.path / "checkpoint.pt").unlink()
    assert store.list()[0].restartable and indexed(store) == direct(store)


LIST_IN_WORKERS = """
import json, sys
from core.store import index
from core.store.info import run_summary_row
from core.store.runs import RunStore
used = []
read = index._read_parallel
index._read_parallel = lambda *a: used.append(len(a[1])) or read(*a)
rows = [run_summary_row(i) for i in RunStore(sys.argv[1]).list()]
print(json.dumps({"used": used, "rows": rows}, default=str))
"""


def test_a_listing_read_by_worker_processes_equals_the_folders(tmp_path):
    """A cold index read in forked workers (a lab's 10,000 folders on every core), then warm: the same listing as
    the folders alone, damaged runs included (a fresh process: forks are made only from one of a single thread)."""
    store = RunStore(tmp_path / "runs")
    runs = [store.create(tiny_config(seed=i, name=f"r{i}")) for i in range(9)]
    for i, run in enumerate(runs[:4]):
        run.update_status(state="stopped", epoch=1, step=8)
        run.append_epoch({**EPOCH, "test_err": 50.0 + i})
    _corrupt_status(store, None, runs[5], [])
    (runs[6].path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    age(store.root)
    env = {**os.environ, index_mod.MIN_RUNS_ENV: "1", folder_check.WORKERS_ENV: "2", "PYTHONPATH": str(ROOT)}

    def listed() -> dict:
        out = subprocess.run([sys.executable, "-c", LIST_IN_WORKERS, str(store.root)], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    truth = json.loads(json.dumps([run_summary_row(RunInfo.read(r)) for r in store.runs()], default=str))
    cold = listed()
    assert cold["used"] == [9] and sorted(cold["rows"], key=str) == sorted(truth, key=str)
    assert [r["status"] for r in cold["rows"]].count("damaged") == 5     # 4 checkpoints lost, a status garbled
    warm = listed()
    assert warm["used"] == [] and warm["rows"] == cold["rows"]      # every row from the index this time


def test_a_row_keeps_a_tally_of_the_epochs_and_the_curves_are_read_when_asked(tmp_path, monkeypatch):
    """A 164-epoch run's row holds what tables need of its epochs (count, final and best error, epoch time), not the
    164 rows (40 KB a row: 400 MB for a lab of 10,000 runs); its curves are read from epochs.jsonl when asked."""
    monkeypatch.setattr(reader, "MAX_ROWS_BYTES", 10**7)
    store = RunStore(tmp_path)
    run = store.create(tiny_config(name="long"))
    run.append_jsonl(run.epochs_path, [{**EPOCH, "epoch": e, "step": 8 * e, "test_err": 90.0 - e / 4} for e in
                                       range(1, 165)])
    run.update_status(state="finished", epoch=164, step=8 * 164)
    age(tmp_path)
    store.list()                                          # the row is written
    (info,) = store.list()                                # ... and read
    assert info.state == "finished" and info._epochs is None and info.epoch_count == 164 == info.epochs_done
    assert (info.final_test_err, info.best_test_err, info.epoch_s) == (49.0, 49.0, 1.0)
    with sqlite3.connect(tmp_path / index_mod.INDEX_FILE) as db:
        (row,) = db.execute("SELECT data FROM runs").fetchone()
    assert len(row) < 3000 and '"train_loss"' not in row
    assert len(info.epochs) == 164 and info.epochs[-1]["epoch"] == 164      # read now, from the file
    assert summary([info]) == direct(store)
