"""The run queue and its scheduler (issue 9) on CPU slots, with real tiny trainer processes.

Every wait polls the run folders with a deadline. A test's scheduler is stopped (and any trainer it left is
killed) when the test ends, whatever happened.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli.main import main
from core.serve import queue as Q
from core.serve import scheduler as S
from core.serve import scheduler_control as SC
from core.serve.launch import ENTRY_POINT
from core.serve.slots import make_slots
from core.store.runs import RunStore
from tests.cli.test_cli import TINY, assert_one_epoch_line_each, cli, wait_for
from tests.conftest import end_left_behind
from tests.conftest import tiny_config as _tiny

FAST = ["--channels-last", "off"]     # no format measurement at start: trainer processes start sooner


def tiny_config(**overrides):
    return _tiny(**{"channels_last": "off", **overrides})


def status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def entry(run: Path) -> dict:
    return json.loads((run / "queue.json").read_text())


def finished(root: Path, ids) -> bool:
    return all(status(root / i)["state"] == "finished" for i in ids)


def started_lines(run: Path) -> list[str]:
    return [line for line in (run / "events.log").read_text().splitlines() if "  started " in line]


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "runs"
    yield root
    end_left_behind(root)


def test_four_queued_runs_train_two_at_a_time_and_a_second_scheduler_claims_nothing(root, capsys):
    res = cli("queue", "add", *TINY, *FAST, "--epochs", "2", "--seeds", "1-4", "--name", "four", "--devices", "cpu,cpu",
              runs=root)
    assert res.returncode == 0, res.stdout + res.stderr
    ids = [f"four-s{i}" for i in range(1, 5)]
    assert [line.split()[1] for line in res.stdout.splitlines()[:4]] == ids
    assert "scheduler started" in res.stdout and "cpu#0, cpu#1" in res.stdout
    # a second scheduler on the same folder says so and leaves, in the background or in the foreground
    assert main(["scheduler", "--devices", "cpu,cpu", "--runs-dir", str(root)]) == 0
    assert main(["scheduler", "--foreground", "--devices", "cpu", "--runs-dir", str(root)]) == 0
    assert capsys.readouterr().out.count("already serves") == 2
    wait_for(lambda: any(r["slot"] for r in Q.queue_rows(RunStore(root))), "a run placed in a slot")
    assert main(["queue", "--runs-dir", str(root)]) == 0
    listing = capsys.readouterr().out
    assert "2 slots busy" in listing and "cpu#" in listing
    wait_for(lambda: finished(root, ids), "all four runs to finish", timeout=150)
    spans = sorted((status(root / i)["started_at"], status(root / i)["finished_at"]) for i in ids)
    overlaps = [max(sum(s <= t < e for s, e in spans) for t in (s for s, _ in spans))]
    assert overlaps == [2], spans                      # two ran at once, never three
    for i in ids:
        assert entry(root / i)["launches"] == 1 and len(started_lines(root / i)) == 1
        assert_one_epoch_line_each(root / i, 2)
    wait_for(lambda: (root / SC.LOG_FILE).read_text().count("finished on cpu#") == 4, "the scheduler to see them end")
    assert (root / SC.LOG_FILE).read_text().count("serving ") == 1


def test_sigkilled_trainer_is_resumed_and_keeps_one_line_per_epoch(root):
    (run,) = Q.enqueue(RunStore(root), [tiny_config(name="killed", epochs=3)])
    assert main(["scheduler", "--devices", "cpu", "--idle-exit", "30", "--runs-dir", str(root)]) == 0
    wait_for(lambda: "checkpoint saved at epoch 1," in (run.path / "events.log").read_text(), "the first checkpoint",
             timeout=90)
    os.kill(status(run.path)["pid"], signal.SIGKILL)
    wait_for(lambda: entry(run.path).get("retries") == 1, "the scheduler to resume it")
    wait_for(lambda: status(run.path)["state"] == "finished", "the resumed run to finish", timeout=90)
    assert_one_epoch_line_each(run.path, 3)
    events = (run.path / "events.log").read_text()
    assert "died with exit code -9; resuming from its checkpoint (retry 1 of 2)" in events
    assert "resumed at epoch" in events
    assert "retry 1 of 2" in (root / SC.LOG_FILE).read_text()


def test_queue_order_changes_are_obeyed_and_a_removed_run_never_starts(root, capsys):
    store = RunStore(root)
    Q.enqueue(store, [tiny_config(name=n, epochs=1) for n in ("a", "b", "c")])
    assert [q.run.id for q in Q.queued(store)] == ["a", "b", "c"]
    assert main(["queue", "move", "c", "1", "--runs-dir", str(root)]) == 0
    assert main(["queue", "remove", "b", "--runs-dir", str(root)]) == 0
    assert [q.run.id for q in Q.queued(store)] == ["c", "a"]
    assert main(["scheduler", "--devices", "cpu", "--idle-exit", "30", "--runs-dir", str(root)]) == 0
    wait_for(lambda: finished(root, "ca"), "c and a to finish", timeout=120)
    assert status(root / "c")["finished_at"] <= status(root / "a")["started_at"]     # one slot: c, then a
    assert status(root / "b")["state"] == "stopped" and not started_lines(root / "b")
    assert entry(root / "b")["launches"] == 0 and "removed from the queue" in (root / "b" / "events.log").read_text()
    # moving or removing a run that is not queued: exit 1 and one line each
    capsys.readouterr()
    assert main(["queue", "move", "a", "1", "--runs-dir", str(root)]) == 1
    assert main(["queue", "remove", "b", "--runs-dir", str(root)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "is not queued (state: finished)" in err[0] and "(state: stopped)" in err[1]


def test_moving_renumbers_the_queue_and_new_runs_go_last(tmp_path, capsys):
    store = RunStore(tmp_path)
    Q.enqueue(store, [tiny_config(name=n) for n in "wxyz"])
    assert Q.move(store, "z", 2) == ["w", "z", "x", "y"]
    assert Q.move(store, "w", 99) == ["z", "x", "y", "w"]
    assert [entry(tmp_path / i)["position"] for i in "zxyw"] == [1, 2, 3, 4]
    Q.enqueue(store, [tiny_config(name="v")])
    assert [q.run.id for q in Q.queued(store)] == ["z", "x", "y", "w", "v"]
    assert main(["queue", "move", "v", "0", "--runs-dir", str(tmp_path)]) == 2
    assert main(["queue", "move", "nope", "1", "--runs-dir", str(tmp_path)]) == 2
    assert main(["queue", "remove", "y", "--delete", "--runs-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "y").exists() and [q.run.id for q in Q.queued(store)] == ["z", "x", "w", "v"]
    capsys.readouterr()
    assert main(["queue", "--json", "--runs-dir", str(tmp_path)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["scheduler"] is None
    assert [(r["position"], r["id"], r["state"]) for r in listing["runs"]] == [
        (1, "z", "queued"), (2, "x", "queued"), (3, "w", "queued"), (4, "v", "queued")]


def test_out_of_memory_is_retried_with_twice_the_micro_batches(root):
    """A run a scheduler placed that ended out-of-memory (set up here: the CPU cannot run out of CUDA memory)."""
    store = RunStore(root)
    (run,) = Q.enqueue(store, [tiny_config(name="oom", epochs=1, on_oom="fail")])
    Q.write_entry(run, {**entry(run.path), "position": None, "slot": "cpu#0", "device": "cpu", "pid": 999999,
                        "launches": 1})
    run.update_status(state="out-of-memory", error="out of memory at batch size 32")
    sched = S.Scheduler(store, make_slots(["cpu"]), idle_exit_s=0.5)
    thread = threading.Thread(target=sched.serve, daemon=True)     # a failed stop cannot hold the suite
    thread.start()
    try:
        wait_for(lambda: status(run.path)["state"] == "finished", "the retried run to finish", timeout=90)
    finally:
        sched.stop_event.set()
        thread.join(30)
    assert not thread.is_alive(), "the scheduler did not stop"
    assert (run.read_config().on_oom, run.read_config().micro_batches) == ("split", 2)
    assert status(run.path)["micro_batches"] == 2
    assert entry(run.path)["oom_retried"] is True and entry(run.path)["retries"] == 0
    assert "out of memory; retrying with 2 micro-batches" in (run.path / "events.log").read_text()
    # another out-of-memory doubles them again (a DDP run cannot split in the middle of a step: the retry must)
    Q.write_entry(run, {**entry(run.path), "settled": False})
    run.update_status(state="out-of-memory")
    sched._ended(run, 1)
    assert [why for _, why in sched.retry] == ["out-of-memory"] and run.read_config().micro_batches == 4
    sched.retry = []
    # one image per slice already, a failure or a divergence: not retried
    run.update_status(micro_batches=32)
    for state in ("out-of-memory", "failed", "diverged"):
        Q.write_entry(run, {**entry(run.path), "settled": False})
        run.update_status(state=state)
        sched._ended(run, 1)
        assert sched.retry == [] and entry(run.path)["settled"] is True


def test_a_scheduler_whose_folder_is_deleted_leaves(tmp_path):
    store = RunStore(tmp_path / "runs")
    sched = S.Scheduler(store, make_slots(["cpu"]), stay=True)
    thread = threading.Thread(target=sched.serve, daemon=True)     # a failed stop cannot hold the suite
    thread.start()
    try:
        wait_for(lambda: SC.read_state(store.root) is not None, "the scheduler to serve", timeout=30)
        (store.root / SC.LOCK_FILE).unlink()                  # e.g. rm -rf of the runs folder
        thread.join(10)
        assert not thread.is_alive()
        assert "was deleted or replaced: leaving" in (store.root / SC.LOG_FILE).read_text()
    finally:
        sched.stop_event.set()
        thread.join(10)


def test_a_foreground_scheduler_under_nohup_survives_the_terminal_closing(root):
    # `nohup tui_app.py scheduler --foreground &`, then the terminal closes (SIGHUP): it keeps serving the folder
    root.mkdir(parents=True)
    proc = subprocess.Popen(["nohup", sys.executable, str(ENTRY_POINT), "scheduler", "--foreground", "--devices", "cpu",
                             "--idle-exit", "30", "--runs-dir", str(root)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: (SC.read_state(root) or {}).get("pid") == proc.pid, "the scheduler to serve", proc=proc)
        os.kill(proc.pid, signal.SIGHUP)
        (run,) = Q.enqueue(RunStore(root), [tiny_config(name="after-hup", epochs=1)])
        wait_for(lambda: entry(run.path).get("launches") or proc.poll() is not None, "the run to start, or the end")
        assert proc.poll() is None and entry(run.path).get("launches") == 1, (root / SC.LOG_FILE).read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_killed_torchrun_launcher_stops_its_workers_with_a_checkpoint_and_frees_its_slot(root):
    # --gpus-per-run 2 (here two CPU processes): kill -9 torchrun's agent. Its workers, in sessions of their own, used
    # to train on with nobody to wait for them (issue 29.3); each now gets a SIGTERM when its launcher dies
    # (core/train/distributed.py end_with_launcher): the run stops with a checkpoint, resumable, and the slot frees
    store = RunStore(root)
    (run,) = Q.enqueue(store, [tiny_config(name="ddp", epochs=200, batch_size=64)])
    assert main(["scheduler", "--devices", "cpu,cpu", "--gpus-per-run", "2", "--idle-exit", "30",
                 "--runs-dir", str(root)]) == 0
    wait_for(lambda: "checkpoint saved at epoch 1," in (run.path / "events.log").read_text(), "the first epoch",
             timeout=90)
    (other,) = Q.enqueue(store, [tiny_config(name="next", epochs=1)])
    os.kill(entry(run.path)["pid"], signal.SIGKILL)           # torchrun itself
    wait_for(lambda: entry(other.path).get("launches") == 1, "the next run to take the slot")
    wait_for(lambda: not run.is_locked(), "the workers to end")
    assert status(run.path)["state"] == "stopped", status(run.path)
    assert "resumable" in (run.path / "events.log").read_text()


def test_crash_retries_are_bounded(root):
    store = RunStore(root)
    (run,) = Q.enqueue(store, [tiny_config(name="flaky")])
    sched = S.Scheduler(store, make_slots(["cpu"]), retries=2)
    for used, retried in ((0, True), (1, True), (2, False)):
        Q.write_entry(run, {**entry(run.path), "position": None, "retries": used, "pid": 999999, "settled": False})
        run.update_status(state="running", pid=999999)       # its process is gone: crashed
        sched.retry = []
        sched._ended(run, -9)
        assert bool(sched.retry) is retried
    assert "no retries left (2 used)" in (run.path / "events.log").read_text()


@pytest.mark.parametrize("extra, message", [
    (["--depths", "20,21"], "--depths: depth must be 6n+2"),
    (["--seeds", "5-1"], "--seeds: range '5-1' runs backwards"),
    (["--shortcuts", "A,C"], "--shortcuts: unknown shortcut 'C'"),
    (["--depth", "20", "--depths", "20,56"], "--depths: give --depth or --depths, not both"),
    (["--devices", "gpu0"], "--devices: unknown device 'gpu0'"),
    (["--devices", "cuda:0"], "--devices: cuda:0 asked for, but no CUDA GPU is visible here"),
    (["--per-device", "0"], "--per-device: must be 1 or more"),
    (["--lr", "-1"], "--lr: learning rate must be > 0"),
])
def test_bad_queue_add_exits_2_and_creates_nothing(tmp_path, capsys, extra, message):
    root = tmp_path / "runs"
    flags = [f for i, f in enumerate(TINY) if "--depth" not in TINY[max(0, i - 1):i + 1]]   # TINY without --depth 8
    assert main(["queue", "add", *flags, *extra, "--runs-dir", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize("flags, message", [
    (["--idle-exit", "nan"], "--idle-exit: must be 0 or more, got nan"),
    (["--per-device", "0"], "--per-device: must be 1 or more"),
    (["--devices", "cuda:0"], "--devices: cuda:0 asked for"),
    (["--executor", "slurm", "--slurm-cluster", "local", "--gpus-per-run", "2"],
     "--gpus-per-run: applies to --executor local; a Slurm job takes --slurm-gpus-per-run"),
])
@pytest.mark.parametrize("served", [False, True])
def test_bad_scheduler_flags_exit_2_on_a_served_folder_too(tmp_path, capsys, flags, message, served):
    root = tmp_path / "runs"
    root.mkdir()
    held = SC.lock_of(root)
    if served:
        held.acquire()     # as a serving scheduler does
    try:
        assert main(["scheduler", *flags, "--runs-dir", str(root)]) == 2
        for fg in ([], ["--foreground"]):
            assert main(["scheduler", *fg, *flags, "--runs-dir", str(root)]) == 2
    finally:
        held.release()
    err = capsys.readouterr().err
    assert message in err and "already serves" not in err
    assert sorted(p.name for p in root.iterdir()) == ([SC.LOCK_FILE] if served else [])


@pytest.mark.parametrize("command", [["scheduler", "--idle-exit", "0.5"],
                                     ["scheduler", "--foreground", "--idle-exit", "0.5"],
                                     ["queue", "add", *TINY, "--epochs", "1"], ["train", *TINY, "--epochs", "1"]])
def test_a_run_folder_given_as_runs_folder_is_refused(tmp_path, capsys, command):
    # a scheduler served a run's own folder (scheduler.lock/.log/.json among its files); train and queue add made
    # runs inside it, which no listing of the real runs folder shows
    run = RunStore(tmp_path).create(tiny_config(name="one"))
    before = sorted(p.name for p in run.path.iterdir())
    try:
        assert main([*command, "--runs-dir", str(run.path)]) == 2
    finally:
        SC.stop(run.path)
    err = capsys.readouterr().err
    assert f"--runs-dir: {run.path} is a run folder; its runs folder is {tmp_path}" in err
    assert sorted(p.name for p in run.path.iterdir()) == before
    assert main(["queue", "--runs-dir", str(run.path)]) == 0
    assert f"its runs folder is {tmp_path}" in capsys.readouterr().out


def test_queue_add_for_slurm_is_refused_on_a_folder_a_local_scheduler_serves(tmp_path, capsys):
    # the runs went to the local scheduler's slots (the login node) with only 'a scheduler serves ...' said
    pytest.importorskip("submitit")
    root = tmp_path / "runs"
    root.mkdir()
    held = SC.lock_of(root)
    held.acquire()
    try:
        (root / SC.STATE_FILE).write_text(json.dumps({"pid": os.getpid(), "devices": ["cpu"],
                                                     "slots": [{"slot": "cpu#0", "device": "cpu", "run": None}]}))
        assert main(["queue", "add", *TINY, "--executor", "slurm", "--slurm-cluster", "local",
                     "--runs-dir", str(root)]) == 2
    finally:
        held.release()
    err = capsys.readouterr().err
    assert "--executor slurm: the scheduler" in err and "not through Slurm" in err and "scheduler --stop" in err
    assert sorted(p.name for p in root.iterdir()) == sorted([SC.LOCK_FILE, SC.STATE_FILE])


def test_queue_hints_the_slurm_scheduler_where_runs_went_to_slurm(tmp_path, capsys):
    # after the Slurm scheduler left, `queue` said 'start one with: tui_app.py scheduler --runs-dir DIR', which
    # trains the queued runs on this machine (the login node)
    store = RunStore(tmp_path)
    done, waiting = Q.enqueue(store, [tiny_config(name="done"), tiny_config(name="waiting")])
    assert main(["queue", "--runs-dir", str(tmp_path)]) == 0
    assert "--executor slurm" not in capsys.readouterr().out
    Q.write_entry(done, {**entry(done.path), "position": None, "slot": "slurm#0", "device": "slurm", "settled": True})
    assert main(["queue", "--runs-dir", str(tmp_path)]) == 0
    assert f"scheduler --executor slurm (and your --slurm-* flags) --runs-dir {tmp_path}" in capsys.readouterr().out


def test_slots_and_device_fit():
    assert [s.name for s in make_slots(["cpu", "cpu"])] == ["cpu#0", "cpu#1"]
    assert [s.name for s in make_slots(["cuda:0", "cuda:2"], 2)] == ["cuda:0#0", "cuda:0#1", "cuda:2#0", "cuda:2#1"]
    from core.serve.gpus import fits, parse_devices

    assert parse_devices("cpu, cpu") == ["cpu", "cpu"] and parse_devices("") == ["cpu"]   # no GPU here
    assert fits("auto", "cuda:1") and fits("cuda", "cuda:1") and fits("cuda:1", "cuda:1")
    assert not fits("cuda:0", "cuda:1") and not fits("cpu", "cuda:0") and not fits("cuda", "cpu")
