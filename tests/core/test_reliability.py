"""Issue 11: one bad folder never takes the app down, nothing is written outside the runs folder, every failure is a
clear state. One test (or a few) per point; point 1's fuzz is tests/core/test_fuzz.py and tests/ui/test_damaged_
folders.py. Each of these failed before the fix."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import core.util.files
from cli.main import main
from core.store.runs import RunError, RunStore
from core.train.checkpoint import load_checkpoint
from core.train.trainer import Trainer, train_run
from core.util.files import NotAFileError, mount_of
from tests.cli.test_cli import REPO, TINY, env, run_folders, wait_for
from tests.conftest import tiny_config
from tests.core.train.test_trainer import SlowStopAfter, StopAfter

ESC = "\x1b"


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


# -- 2: links inside a run folder are never followed -------------------------------------------------------------------
def test_links_in_a_run_folder_are_neither_written_nor_read_through(tmp_path, capsys):
    outside = tmp_path / "outside.txt"
    outside.write_text('{"state": "finished"}\n')
    runs = tmp_path / "runs"
    run = RunStore(runs).create(tiny_config(name="r"))
    for name in ("events.log", "lock", "epochs.jsonl", "status.json"):
        (run.path / name).unlink(missing_ok=True)
        os.symlink(outside, run.path / name)
    with pytest.raises(NotAFileError, match="events.log is a symbolic link"):
        run.log("appended through a link?")
    with pytest.raises(NotAFileError):
        run.append_epoch({"epoch": 1})
    with pytest.raises(NotAFileError, match="lock is a symbolic link"):
        run.acquire_lock()                                    # it used to truncate the file the link points to
    info = run.info()                                         # status.json is not read through its link either
    assert info.state == "damaged" and "is a symbolic link" in info.error
    code, out, err = cli(capsys, "resume", "r", "--runs-dir", runs)
    assert code == 1 and one_line(err) and "is a symbolic link" in err
    (run.path / "lock").unlink()                              # the trainer itself refuses, writing nothing
    with pytest.raises(RunError, match="is a symbolic link"):
        Trainer(run).run()
    assert outside.read_text() == '{"state": "finished"}\n'


# -- 3: a full disk ends the run as failed, keeps the last good checkpoint, says so in one line ------------------------
class FullDisk:
    """Stands in for core.util.files.write_all: the disk fills up once the first epoch's checkpoint and best.pt are
    written;
    after that only writes of at most ``room`` bytes succeed (0: none at all)."""

    def __init__(self, room: int):
        self.real, self.room, self.full = core.util.files.write_all, room, False

    def __call__(self, fd: int, data) -> None:
        if self.full and len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.real(fd, data)
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(".best.pt."):
            self.full = True


def test_a_completely_full_disk_fails_the_run_keeps_the_checkpoint_and_resume_finishes(tmp_path, monkeypatch):
    run = RunStore(tmp_path).create(tiny_config(epochs=2))
    monkeypatch.setattr(core.util.files, "write_all", FullDisk(room=0))
    trainer = Trainer(run)
    assert trainer.run() == "failed"                          # no OSError out of the trainer
    assert trainer.message == f"disk full: free space on {mount_of(run.path)} and resume"
    monkeypatch.undo()
    assert load_checkpoint(run.checkpoint_path)["epoch"] == 1  # the last good checkpoint, whole
    assert not [p for p in os.listdir(run.path) if p.endswith(".tmp")]
    assert run.info().state == "crashed"                      # status.json could not be written: the run is resumable
    assert Trainer(run).run() == "finished"
    assert [r["epoch"] for r in run.read_epochs()] == [1, 2]


def test_a_nearly_full_disk_records_the_reason_and_the_cli_prints_one_line(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    monkeypatch.setattr(core.util.files, "write_all", FullDisk(room=4096))   # room for status.json, not a checkpoint
    code, out, err = cli(capsys, "train", *TINY, "--epochs", "2", "--runs-dir", runs)
    monkeypatch.undo()
    (run_path,) = runs.iterdir()
    reason = f"disk full: free space on {mount_of(run_path)} and resume"
    assert code == 1 and err == "" and out.splitlines()[-1] == f"failed: {reason}"
    assert "Traceback" not in out and "Errno" not in out
    status = json.loads((run_path / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == reason
    assert reason in (run_path / "events.log").read_text()
    assert load_checkpoint(run_path / "checkpoint.pt")["epoch"] == 1


# -- 4: a refused resume changes nothing -------------------------------------------------------------------------------
def test_a_refused_resume_with_epochs_writes_nothing(tmp_path, capsys):
    run, state = train_run(RunStore(tmp_path), tiny_config(epochs=1))
    assert state == "finished"
    holder = RunStore(tmp_path).get(run.id)
    holder.acquire_lock()                                     # the run trains in another process
    try:
        before = snapshot(run.path)
        code, out, err = cli(capsys, "resume", run.id, "--epochs", "5", "--runs-dir", tmp_path)
        assert code == 1 and one_line(err) and "being trained by another process" in err
        assert snapshot(run.path) == before                   # config.json, status.json, events.log untouched
    finally:
        holder.release_lock()


# -- 5: one-line errors where tracebacks were --------------------------------------------------------------------------
def test_a_config_file_that_is_not_utf8_is_bad_input(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_bytes(b"depth = 20\n# \xff\xfe\n")
    code, out, err = cli(capsys, "train", "--config", path, "--runs-dir", tmp_path / "runs")
    assert code == 2 and one_line(err) and "not UTF-8" in err and not (tmp_path / "runs").exists()


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_a_runs_folder_that_is_a_file_is_bad_input(tmp_path, capsys, monkeypatch, where):
    (tmp_path / "f").write_text("not a folder")
    runs = tmp_path / "f" if where == "file" else tmp_path / "f" / "runs"
    for argv in (["train", *TINY], ["runs"], ["show", "x"], ["resume", "x"], ["eval", "x"], []):
        code, out, err = cli(capsys, *argv, "--runs-dir", runs)
        assert code == 2 and one_line(err) and ("is a file" in err or "lies under" in err), (argv, err)
    monkeypatch.setenv("RESLAB_RUNS", str(runs))
    code, out, err = cli(capsys, "runs")
    assert code == 2 and one_line(err) and "$RESLAB_RUNS" in err
    assert (tmp_path / "f").read_text() == "not a folder"


def read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` a read-only file system for this process (the tests may run as root, whom permissions do
    not stop): every open for writing and every mkdir under it fails with EROFS."""
    real_open, real_mkdir = os.open, os.mkdir
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    inside = lambda p: str(Path(os.path.abspath(p))).startswith(str(folder))

    def ro_open(path, flags, *a, **kw):
        if flags & writes and inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *a, **kw)

    def ro_mkdir(path, *a, **kw):
        if inside(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *a, **kw)

    monkeypatch.setattr(os, "open", ro_open)
    monkeypatch.setattr(os, "mkdir", ro_mkdir)


def test_a_read_only_runs_folder_is_said_in_one_line(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    run, _ = train_run(RunStore(runs), tiny_config(epochs=1))
    run.update_status(state="stopped")
    read_only(monkeypatch, runs)
    code, out, err = cli(capsys, "train", *TINY, "--runs-dir", runs)
    assert code == 2 and one_line(err) and "is read-only" in err, err
    code, out, err = cli(capsys, "resume", run.id, "--epochs", "2", "--runs-dir", runs)
    assert code == 1 and one_line(err) and "is read-only" in err, err
    monkeypatch.undo()
    assert [p.name for p in runs.iterdir()] == [run.id]


def test_a_run_folder_deleted_while_training_ends_cleanly_and_says_so(tmp_path, capsys):
    runs = tmp_path / "runs"

    def delete_when_training():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            folders = list(runs.iterdir()) if runs.is_dir() else []
            if folders and (folders[0] / "steps.jsonl").exists():
                shutil.rmtree(folders[0])
                return
            time.sleep(0.01)

    deleter = threading.Thread(target=delete_when_training)
    deleter.start()
    code, out, err = cli(capsys, "train", *TINY, "--epochs", "200", "--runs-dir", runs)
    deleter.join()
    assert code == 1 and err == "" and "Traceback" not in out
    last = out.splitlines()[-1]
    assert last.startswith("failed: ") and "was deleted" in last, out
    assert list(runs.iterdir()) == []                         # nothing was written back into a new folder


def test_unreadable_values_make_a_run_damaged_not_a_traceback(tmp_path, capsys):
    store = RunStore(tmp_path)
    bad_depth = store.create(tiny_config(name="depth-9"))
    cfg = json.loads(bad_depth.config_path.read_text())
    bad_depth.config_path.write_text(json.dumps({**cfg, "depth": 9}))
    bad_time = store.create(tiny_config(name="bad-time"))
    bad_time.update_status(updated_at="yesterday", created_at="long ago")
    dir_config = store.create(tiny_config(name="dir-config"))
    dir_config.config_path.unlink()
    dir_config.config_path.mkdir()
    nested = store.create(tiny_config(name="nested"))     # brackets nested past Python's recursion limit
    nested.status_path.write_text("[" * 100_000)
    nested.steps_path.write_text("[" * 100_000 + "\n")
    assert nested.read_steps() == []
    code, out, err = cli(capsys, "runs", "--format", "json", "--runs-dir", tmp_path)
    assert code == 0 and err == ""
    rows = {r["id"]: r for r in json.loads(out)}
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(("depth-9", "bad-time", "dir-config",
                                                                        "nested"), "damaged")
    assert "depth must be 6n+2" in rows["depth-9"]["error"] and "not a number" in rows["bad-time"]["error"]
    for rid in rows:
        code, out, err = cli(capsys, "eval", rid, "--runs-dir", tmp_path)     # damaged, or no checkpoint yet
        assert code == 1 and one_line(err), (rid, err)
        code, out, err = cli(capsys, "resume", rid, "--runs-dir", tmp_path)
        assert code == 1 and one_line(err) and "damaged" in err, (rid, err)
        code, out, err = cli(capsys, "show", rid, "--runs-dir", tmp_path)
        assert code == 0 and "damaged" in out


# -- 6: values that cannot run are refused by validation ---------------------------------------------------------------
@pytest.mark.parametrize("flag,value,message", [
    ("--seed", str(2 ** 64), "seed must be at most 2**64-1"),
    ("--width", str(10 ** 6), "TiB to train"),
    ("--batch-size", str(10 ** 9), "batch size must be at most 1,000,000"),
    ("--log-every", str(10 ** 12), "log_every must be at most 100,000"),
    ("--max-train-images", str(10 ** 13), "max_train_images must be at most 1,000,000"),
    ("--depth", "1e300", "got 1e+300"),
])
def test_sizes_that_cannot_run_are_refused_up_front(tmp_path, capsys, flag, value, message):
    runs = tmp_path / "runs"
    code, out, err = cli(capsys, "train", *TINY, flag, value, "--runs-dir", runs)
    assert code == 2 and one_line(err) and message in err and len(err) < 400, err
    assert not runs.exists()


def test_an_absurd_length_is_allowed_and_its_duration_is_said_at_start(tmp_path):
    cfg = tiny_config(epochs=10 ** 9)
    assert cfg.validate() == {}
    run = RunStore(tmp_path).create(cfg)
    assert Trainer(run, stop_event=SlowStopAfter(12, 0.05)).run() == "stopped"
    line = next(e for e in run.read_events() if "estimated time to the end" in e)
    assert "years" in line and "images/s" in line


# -- 7: temp files of a save cut short by kill -9 are removed when the lock is taken -----------------------------------
def test_stale_temp_files_are_removed_when_the_lock_is_taken(tmp_path):
    run = RunStore(tmp_path).create(tiny_config())
    stale = [".checkpoint.pt.k1ll3d.tmp", ".best.pt.x7.tmp", ".status.json.abc.tmp"]
    kept = [".request.q9.tmp", "notes.tmp"]          # a `stop` from another process writes its request without lock
    for name in stale + kept:
        (run.path / name).write_bytes(b"\0" * 4096)
    run.acquire_lock()
    try:
        names = set(os.listdir(run.path))
        assert not names & set(stale) and set(kept) <= names
    finally:
        run.release_lock()


# -- 8: SIGTERM at the very start --------------------------------------------------------------------------------------
def test_sigterm_in_the_first_second_still_gives_the_resume_line(tmp_path):
    proc = subprocess.Popen([sys.executable, "tui_app.py", "train", *TINY, "--epochs", "3", "--runs-dir",
                             str(tmp_path)], cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(lambda: run_folders(tmp_path), "the run folder", proc=proc)
    proc.send_signal(signal.SIGTERM)        # while the engine (torch) is being imported, or (a loaded machine polls
    out, err = proc.communicate(timeout=120)    # later) once the trainer has started, before its first step is done
    assert proc.returncode == 143, (proc.returncode, out, err)
    (run,) = tmp_path.iterdir()
    command = f"python tui_app.py resume {run.name} --runs-dir {tmp_path.resolve()}"
    assert out.splitlines()[-1] in (
        f"resume with: {command}",                                                      # not started
        f"run {run.name}: stopped before its first step completed; nothing to save: {command} continues it"), out
    assert ("stopped by SIGTERM" in out) is out.splitlines()[-1].startswith("resume with:") and err == ""
    assert RunStore(tmp_path).get(run.name).info().state in ("queued", "stopped")


# -- 9: damaged logs with an intact checkpoint: resume --repair --------------------------------------------------------
def test_repair_rebuilds_status_and_cuts_logs_back_and_the_run_ends_exactly(tmp_path, capsys):
    cfg = tiny_config(epochs=3, deterministic=True, log_every=2)
    store = RunStore(tmp_path)
    ref, state = train_run(store, cfg.with_overrides(name="ref"))
    run = store.create(cfg.with_overrides(name="cut"))
    assert Trainer(run, stop_event=StopAfter(21)).run() == "stopped"          # epoch 3 of 3, mid-epoch
    epochs = run.epochs_path.read_text().splitlines()
    run.epochs_path.write_text("\n".join([epochs[0], "garbage", *epochs[1:]]) + "\n")
    steps = run.steps_path.read_text().splitlines()
    run.steps_path.write_text("\n".join([*steps[:3], '{"step": "x"}', *steps[3:]]) + "\n")
    run.status_path.unlink()
    code, out, err = cli(capsys, "runs", "--format", "json", "--runs-dir", tmp_path)
    row = next(r for r in json.loads(out) if r["id"] == "cut")
    assert row["status"] == "damaged" and row["error"].endswith("resume --repair can recover it from checkpoint.pt")
    code, out, err = cli(capsys, "resume", "cut", "--runs-dir", tmp_path)
    assert code == 1 and one_line(err) and "resume cut --repair" in err
    code, out, err = cli(capsys, "resume", "cut", "--repair", "--runs-dir", tmp_path)
    assert code == 0 and err == "", out
    assert "repaired: status.json rebuilt from checkpoint.pt" in out and "dropped 1 unreadable line" in out
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(run.checkpoint_path)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    drop = {"seconds", "eval_seconds", "images_per_s", "peak_mem_bytes", "reserved_mem_bytes"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in run.read_epochs()] == \
           [{k: v for k, v in r.items() if k not in drop} for r in ref.read_epochs()]
    assert run.read_steps() == ref.read_steps()


def test_a_garbage_line_in_steps_jsonl_is_dropped_with_a_warning_on_resume(tmp_path):
    run = RunStore(tmp_path).create(tiny_config(epochs=2))
    assert Trainer(run, stop_event=StopAfter(6)).run() == "stopped"
    run.steps_path.write_text("not json\n" + run.steps_path.read_text())
    assert run.info().state == "stopped"
    assert Trainer(run).run() == "finished"                                  # it used to end as failed
    assert any("dropped 1 unreadable line of steps.jsonl" in e for e in run.read_events())
    assert [s["step"] for s in run.read_steps()] == list(range(4, 17, 4))


# -- 10: eval evaluates what it can; torch errors in one line; show escapes events.log ---------------------------------
def test_eval_evaluates_the_checkpoint_when_best_pt_is_bad(tmp_path, capsys):
    run, _ = train_run(RunStore(tmp_path), tiny_config(epochs=1))
    run.best_path.write_bytes(b"not a checkpoint")
    code, out, err = cli(capsys, "eval", run.id, "--device", "cpu", "--json", "--runs-dir", tmp_path)
    assert code == 0 and err == ""
    results = {r["weights"]: r for r in json.loads(out)["results"]}
    assert results["checkpoint.pt"]["test_err"] >= 0 and "cannot be loaded" in results["best.pt"]["error"]
    code, out, err = cli(capsys, "eval", run.id, "--device", "cpu", "--runs-dir", tmp_path)
    assert code == 0 and "best.pt       cannot be loaded" in out


def test_a_torch_error_is_one_line_for_the_user_and_whole_in_events_log(tmp_path, capsys):
    run, _ = train_run(RunStore(tmp_path), tiny_config(epochs=1))
    torch.save({"model": {}, "payload": Path("/etc/passwd")}, run.checkpoint_path)   # not loadable safely
    run.update_status(state="stopped")
    code, out, err = cli(capsys, "resume", run.id, "--runs-dir", tmp_path)
    assert code == 1 and err == ""
    last = out.splitlines()[-1]
    assert last.startswith("failed: checkpoint.pt cannot be loaded (UnpicklingError)") and len(last) < 300
    error = run.read_status()["error"]
    assert "\n" not in error and error == last.removeprefix("failed: ")
    log = run.events_path.read_text()
    assert "Weights only load failed" in log and log.count("\n    ") >= 3    # the whole text, indented lines


def test_show_escapes_control_characters_from_events_log(tmp_path, capsys):
    run = RunStore(tmp_path).create(tiny_config(name="r"))
    with open(run.events_path, "ab") as fh:
        fh.write(b"2026-01-01 00:00:00  \x1b[2J\x1b]0;pwned\x07 \xe2\x80\xae reversed\n")
    code, out, err = cli(capsys, "show", "r", "--runs-dir", tmp_path)
    assert code == 0 and ESC not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J\\x1b]0;pwned\\x07 \\u202e reversed" in out
