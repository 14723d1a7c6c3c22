"""Reliability, round 2 (issue 20): a deleted lock, the queue's own files, unbounded reads, odd inputs.

Each test here failed on the code before its fix.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import core.store.reader
import core.train.trainer as trainer_module
import core.util.files
from core.serve import queue as Q
from core.serve import scheduler as S
from core.serve import scheduler_control as SC
from core.serve.slots import make_slots
from core.store.lock import FileLock
from core.store.runs import RunStore, now
from core.train.trainer import Trainer
from core.util.files import atomic_write_json
from tests.cli.test_cli import REPO, TINY, env
from tests.conftest import tiny_config
from tests.core.test_reliability import read_only


def snapshot(folder: Path, skip: tuple[str, ...] = ("events.log",)) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name not in skip}


# -- 1: a deleted lock file --------------------------------------------------------------------------------------------
class TakeOverAt:
    """A stop flag asked once per iteration: at iteration ``at`` another "process" deletes the run's lock file, locks
    a new one and writes the run's status (as `rm runs/X/lock; resume X` does); at ``stop`` it asks for a stop (a
    SIGTERM), whose checkpoint would overwrite the other process's."""

    def __init__(self, run, at: int, stop: int):
        self.run, self.at, self.stop, self.calls = run, at, stop, 0
        self.other = FileLock(run.lock_path)
        self.taken: dict[str, bytes] = {}

    def is_set(self) -> bool:
        self.calls += 1
        if self.calls == self.at:
            self.run.lock_path.unlink()
            self.other.acquire()
            atomic_write_json(self.run.status_path, {"state": "running", "pid": 1, "note": "the other process"})
            self.taken = snapshot(self.run.path)
        return self.calls >= self.stop

    def set(self) -> None:
        self.stop = 0


def test_a_trainer_whose_lock_file_was_deleted_stops_writing_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "HEARTBEAT_S", 0.0)     # a heartbeat every iteration
    run = RunStore(tmp_path).create(tiny_config(epochs=3))
    flag = TakeOverAt(run, at=3, stop=12)                       # taken in epoch 1 (8 iterations), stop in epoch 2
    trainer = Trainer(run, stop_event=flag)
    state = trainer.run()
    assert flag.taken, "the take-over happened"
    assert state == "crashed" and "lock file" in trainer.message and "another process" in trainer.message
    assert flag.calls < 6, "it noticed at its next heartbeat"
    assert snapshot(run.path) == flag.taken           # no status, steps, epoch or checkpoint written after it
    assert not run.checkpoint_path.exists()
    assert json.loads(run.status_path.read_text())["note"] == "the other process"
    assert "lock file" in run.read_events()[-1]      # events.log (append-only) says why this process left
    flag.other.release()


# -- 3: kill -9 of the scheduler inside its claim window ---------------------------------------------------------------
class StartOnce:
    """A launcher that records the runs it is asked to start and then stops the scheduler (no trainer process)."""

    def __init__(self):
        self.started: list[str] = []
        self.scheduler = None

    def start(self, run, slot, lock_fd):
        self.started.append(run.id)
        self.scheduler.stop_event.set()
        return type("Handle", (), {"pid": 4242, "poll": lambda self: None})()


def claimed_by_a_killed_scheduler(run) -> None:
    """What ``Scheduler._claim`` writes before it starts the trainer: the state a kill -9 right then leaves."""
    Q.write_entry(run, {**Q.read_entry(run), "position": None, "launches": 1, "slot": "cpu#0", "device": "cpu",
                        "pid": None, "started_at": now(), "settled": False})


def test_a_run_claimed_by_a_scheduler_killed_before_its_trainer_started_is_taken_back(tmp_path):
    store = RunStore(tmp_path)
    first, _ = Q.enqueue(store, [tiny_config(name="first"), tiny_config(name="second")])
    claimed_by_a_killed_scheduler(first)
    launcher = StartOnce()
    launcher.scheduler = S.Scheduler(store, make_slots(["cpu"]), launcher=launcher, idle_exit_s=5)
    launcher.scheduler.serve()
    assert launcher.started == ["first"]        # taken back, at the head of the queue where it was
    log = (tmp_path / SC.LOG_FILE).read_text()
    assert "first was claimed by a scheduler that ended before it started a trainer" in log, log
    assert "back in the queue" in first.read_events()[-1]


# -- 4: a corrupt or deleted queue.json --------------------------------------------------------------------------------
def test_a_queued_run_whose_queue_json_is_corrupt_or_lost_is_damaged_and_resumable(tmp_path, capsys):
    store = RunStore(tmp_path)
    runs = Q.enqueue(store, [tiny_config(name=n, epochs=1) for n in ("ok", "word", "bytes", "gone")])
    ok, word, garbage, gone = runs
    Q.write_entry(word, {**Q.read_entry(word), "position": "first"})
    (garbage.path / Q.QUEUE_FILE).write_bytes(bytes(range(256)))
    (gone.path / Q.QUEUE_FILE).unlink()
    gone.update_status(updated_at=now() - 60)          # nobody has held it for a minute
    infos = {i.id: i for i in store.list()}
    assert infos["ok"].state == "queued"
    assert {i: infos[i].state for i in ("word", "bytes", "gone")} == dict.fromkeys(("word", "bytes", "gone"),
                                                                                   "damaged")
    assert "queue.json 'position' is \"first\", not a number" in infos["word"].error
    assert "queue.json is unreadable (not UTF-8" in infos["bytes"].error
    assert "queue.json is missing" in infos["gone"].error
    assert all("resume it by hand" in infos[i].error for i in ("word", "bytes", "gone"))
    fresh = store.create(tiny_config(name="fresh"))     # just created by `train`, not locked yet: not damaged
    assert fresh.info().state == "queued"
    from cli.main import main

    capsys.readouterr()
    assert main(["resume", "bytes", "--runs-dir", str(tmp_path)]) == 0, capsys.readouterr()
    assert garbage.info().state == "finished"


# -- 2: unbounded reads ------------------------------------------------------------------------------------------------
def one_line_error(capsys, *argv) -> tuple[int, str]:
    from cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) <= 1 and "Traceback" not in err, err
    return code, err


@pytest.mark.parametrize("kind", ["device", "fifo", "folder", "big"])
def test_a_config_file_that_is_no_regular_file_or_too_big_is_bad_input(tmp_path, capsys, kind):
    path = {"device": Path("/dev/zero"), "fifo": tmp_path / "fifo.toml", "folder": tmp_path,
            "big": tmp_path / "big.toml"}[kind]
    if kind == "fifo":
        os.mkfifo(path)                       # no writer: reading it would wait forever
    if kind == "big":
        path.write_text("# padding\n" * 200_000 + "depth = 20\n")     # 2 MB of comments
    runs = tmp_path / "runs"
    code, err = one_line_error(capsys, "train", *TINY, "--config", str(path), "--runs-dir", str(runs))
    assert code == 2 and err.startswith("error: --config: "), err
    assert ("at most 1 MB" if kind == "big" else "not a regular file") in err, err
    assert not runs.exists()


def test_run_files_larger_than_reslab_writes_are_not_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(core.store.reader, "MAX_ROWS_BYTES", 1 << 20)     # as if steps.jsonl had grown past 128 MB
    store = RunStore(tmp_path)
    big_status = store.create(tiny_config(name="big-status"))
    big_status.update_status(state="stopped", note="x" * (2 << 20))       # valid JSON, 2 MB
    huge_steps = store.create(tiny_config(name="huge-steps"))
    huge_steps.append_steps([{"step": i, "loss": 1.0, "err": 50.0, "lr": 0.1} for i in range(40_000)])   # 2 MB
    assert huge_steps.read_steps() == []                              # a view: nothing, never all of it in memory
    info = big_status.info()
    assert info.state == "damaged" and "status.json cannot be read (it is larger than 1 MB" in info.error, info.error


# -- 5: scheduler.json of the wrong types ------------------------------------------------------------------------------
@pytest.mark.parametrize("content", ['{"pid": "x", "slots": "nope"}', '{"slots": [1, {"slot": 2}], "devices": 3}',
                                    '{"pid": 7, "slots": [{"slot": "cpu#0", "run": ["a"]}]}', "[]", "\xff"])
def test_a_scheduler_json_of_wrong_types_never_crashes_queue(tmp_path, capsys, content):
    root = tmp_path / "runs"
    root.mkdir()
    lock = SC.lock_of(root)
    lock.acquire()                      # a scheduler serves the folder
    try:
        (root / SC.STATE_FILE).write_text(content)
        assert SC.read_state(root) == {}
        assert "already serves" in SC.describe(root)
        code, err = one_line_error(capsys, "queue", "--runs-dir", str(root))
        assert code == 0 and err == "", err
        code, err = one_line_error(capsys, "queue", "--json", "--runs-dir", str(root))
        assert code == 0 and err == "", err
    finally:
        lock.release()


# -- 6: queue add on a read-only or full runs folder -------------------------------------------------------------------
class FillsUpAfter:
    """Stands in for core.util.files.write_all: the disk is full after ``writes`` writes."""

    def __init__(self, writes: int):
        self.real, self.left = core.util.files.write_all, writes

    def __call__(self, fd: int, data) -> None:
        self.left -= 1
        if self.left < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.real(fd, data)


@pytest.mark.parametrize("trouble", ["read-only", "full"])
def test_queue_add_on_a_read_only_or_full_runs_folder_is_one_line_and_creates_nothing(tmp_path, capsys,
                                                                                     monkeypatch, trouble):
    runs = tmp_path / "runs"
    runs.mkdir()
    if trouble == "read-only":
        read_only(monkeypatch, runs)
    else:
        monkeypatch.setattr(core.util.files, "write_all", FillsUpAfter(6))   # the first run fits, not the second
    code, err = one_line_error(capsys, "queue", "add", *TINY, "--seeds", "1,2", "--devices", "cpu",
                               "--runs-dir", str(runs))
    monkeypatch.undo()
    assert code == 2 and ("is read-only" if trouble == "read-only" else "disk full") in err, err
    assert list(runs.iterdir()) == []          # no run, no scheduler started


# -- 7: odd inputs -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command,flag,value", [
    ("train", "--runs-dir", ""), ("train", "--config", ""), ("train", "--preset", ""),
    ("train", "--milestones", ""), ("train", "--device", "cpu "), ("train", "--epochs", "\u0663"),
    ("train", "--lr", "\u0660.\u0661"), ("train", "--warmup-iters", "999999999999"), ("train", "--name", ""),
    ("queue add", "--devices", ""), ("queue add", "--name", ""), ("queue add", "--runs-dir", ""),
])
def test_odd_inputs_are_bad_input_and_create_nothing(tmp_path, capsys, monkeypatch, command, flag, value):
    monkeypatch.chdir(tmp_path)                       # where an empty --runs-dir would have made ./runs
    monkeypatch.delenv("RESLAB_RUNS", raising=False)
    runs = [] if flag == "--runs-dir" else ["--runs-dir", str(tmp_path / "runs")]
    code, err = one_line_error(capsys, *command.split(), *TINY, "--epochs", "1", flag, value, *runs)
    assert code == 2 and f"{flag}:" in err, err
    assert list(tmp_path.iterdir()) == []


# -- 8: kill -9 while a run folder is being created --------------------------------------------------------------------
KILLED_WHILE_CREATING = """
import os, sys, tempfile
import core.store.runs
from core.store.runs import RunStore
from tests.conftest import tiny_config

def dies(path, data):                     # config.json half written, then the process is gone (as kill -9 does)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.write(fd, data[:10])
    os._exit(137)

core.store.runs.atomic_write_bytes = dies
RunStore(sys.argv[1]).create(tiny_config(name="half"))
"""


def test_a_run_folder_cut_short_by_kill_9_is_never_listed_and_is_cleaned_up(tmp_path):
    root = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_CREATING, str(root)], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, proc.stderr
    store = RunStore(root)
    assert store.list() == [] and not (root / "half").exists()      # no damaged half-made run
    (left,) = root.iterdir()                                         # a hidden folder, until it is clearly stale
    assert left.name.startswith(".")
    old = time.time() - 3600
    os.utime(left, (old, old))
    assert store.list() == [] and list(root.iterdir()) == []
    assert store.create(tiny_config(name="half")).id == "half"       # the name was never taken


# -- 9: the smaller ones -----------------------------------------------------------------------------------------------
def test_moving_or_removing_a_run_being_claimed_says_so(tmp_path, capsys):
    store = RunStore(tmp_path)
    (run,) = Q.enqueue(store, [tiny_config(name="claimed")])
    claimed_by_a_killed_scheduler(run)
    code, err = one_line_error(capsys, "queue", "move", "claimed", "1", "--runs-dir", str(tmp_path))
    assert code == 1 and "is being started by a scheduler" in err and "(state: queued)" not in err, err


def test_queue_remove_of_a_run_whose_lock_is_a_link_is_one_plain_line(tmp_path, capsys):
    store = RunStore(tmp_path)
    (run,) = Q.enqueue(store, [tiny_config(name="linked")])
    (tmp_path / "elsewhere").write_text("")
    os.symlink(tmp_path / "elsewhere", run.lock_path)
    code, err = one_line_error(capsys, "queue", "remove", "linked", "--runs-dir", str(tmp_path))
    assert code == 1 and "lock is a symbolic link" in err and "NotAFileError" not in err and "Errno" not in err, err


def test_a_runs_path_longer_than_the_system_allows_is_said_so(tmp_path, capsys):
    runs = tmp_path / "/".join(["d" * 200] * 25)            # 5,000 characters: past PATH_MAX (4,096)
    code, err = one_line_error(capsys, "train", *TINY, "--epochs", "1", "--runs-dir", str(runs))
    assert code == 2 and "too long" in err and "deleted" not in err, err


def test_a_run_another_user_cannot_read_says_not_readable_by_you(tmp_path, monkeypatch):
    run = RunStore(tmp_path).create(tiny_config(name="theirs"))

    def denied(path, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(core.store.reader, "read_bytes", denied)    # as for a 0600 file of another user
    info = run.info()
    assert info.state == "damaged" and "config.json is not readable by you" in info.error, info.error


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_run_files_follow_the_umask_so_a_lab_can_share_a_runs_folder(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        run = RunStore(tmp_path / "runs").create(tiny_config(name="shared"))
    finally:
        os.umask(old)
    for name in ("config.json", "status.json", "events.log"):
        assert (run.path / name).stat().st_mode & 0o777 == mode, name
    assert run.path.stat().st_mode & 0o777 == 0o777 & ~umask


def test_reading_the_git_commit_never_writes_the_code_checkout(tmp_path):
    """The git commit recorded in status.json is read with `git --no-optional-locks`: `git status` otherwise
    rewrites .git/index of the code checkout (a write outside the runs folder) when a file's timestamp changed."""
    from core.train.device import _git_commit

    index = Path(subprocess.run(["git", "rev-parse", "--path-format=absolute", "--git-path", "index"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.strip())
    readme = REPO / "README.md"
    before = readme.stat()
    os.utime(readme, (before.st_atime, before.st_mtime + 1))     # same content, newer timestamp: index is stale
    try:
        seen = index.stat()
        _git_commit()
        after = index.stat()
        assert (after.st_ino, after.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns)
    finally:
        os.utime(readme, ns=(before.st_atime_ns, before.st_mtime_ns))


SIGTERM_WHILE_IMPORTING = """
import builtins, os, signal, sys
real_import = builtins.__import__

def importing(name, *args, **kwargs):          # a SIGTERM while the CLI is being imported (its first 0.1 s)
    if name == "cli.main":
        builtins.__import__ = real_import
        os.kill(os.getpid(), signal.SIGTERM)
    return real_import(name, *args, **kwargs)

import tui_app
builtins.__import__ = importing
sys.exit(tui_app.main(sys.argv[1:]))
"""


def test_sigterm_while_train_starts_up_gives_its_message(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SIGTERM_WHILE_IMPORTING, "train", *TINY, "--runs-dir",
                           str(tmp_path / "runs")], cwd=REPO, env=env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stderr == "interrupted by SIGTERM before the run was created; nothing was written\n", proc.stderr
    assert not (tmp_path / "runs").exists()


def test_a_run_waiting_in_an_apps_own_queue_is_never_taken_for_a_lost_one(tmp_path):
    """The app's own queue holds its runs unlocked and without queue.json until their turn (a grid in the app waits
    for hours): such a run stays queued, only a run the folder's queue made is lost with its queue.json (seen: the
    monitor of a run waiting in the app said 'damaged' after 30 s)."""
    run = RunStore(tmp_path).create(tiny_config(name="waits"))
    run.update_status(updated_at=now() - 3600)
    assert run.info().state == "queued"
