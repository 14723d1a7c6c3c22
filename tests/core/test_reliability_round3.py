"""Reliability, round 3 (issue 35): a killed sweep is finishable, a lost checkpoint never restarts a run silently,
an edited config or a foreign checkpoint is refused before the run is touched.

Each test here failed on the code before its fix.
"""
from __future__ import annotations

import json
import math
import os
import random
import signal

import pytest

from bench.kill_loop import sweep_experiment
from core.store.runs import RunError, RunStore
from tests.cli.test_cli import TINY, cli, start, wait_for


def sweep_states(runs) -> dict[int, str]:
    return {i.config.seed: i.state for i in RunStore(runs).list() if i.config is not None}


# -- 1: a killed sweep ---------------------------------------------------------------------------------------------
@pytest.mark.timeout(900)      # several processes start torch; minutes on a loaded machine
def test_a_sweep_killed_midway_lists_every_planned_run_says_it_is_incomplete_and_one_command_finishes_it(tmp_path):
    runs = tmp_path / "runs"
    proc = start("train", *TINY, "--max-train-images", "64", "--max-test-images", "32", "--epochs", "2",
                 "--sweep", "seed=1-3", "--sweep-name", "sw", runs=runs)
    wait_for(lambda: sweep_states(runs).get(1) == "finished" and sweep_states(runs).get(2) == "running",
             "the sweep's second run training", proc=proc, timeout=240)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert sweep_states(runs) == {1: "finished", 2: "crashed", 3: "queued"}    # the run not started is there

    listed = cli("runs", "--sweep", "sw", runs=runs)
    assert listed.returncode == 0 and listed.stdout.count(" queued ") == 1, listed.stdout
    footer = listed.stdout.strip().splitlines()[-1]
    assert footer.startswith("sweep sw: 1 of 3 runs finished, 1 not started (queued), 1 crashed; it is incomplete")
    assert "resume --sweep sw" in footer
    out = tmp_path / "rep"
    rep = cli("report", "--sweep", "sw", "--out", out, "--format", "md", "--no-layer-responses", runs=runs)
    assert rep.returncode == 0 and "the sweep is incomplete" in rep.stdout, rep.stdout + rep.stderr
    assert "the sweep is incomplete (finish it with `resume --sweep sw`" in (out / "report.md").read_text()

    done = cli("resume", "--sweep", "sw", runs=runs, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep sw: 1 of 3 runs finished, 1 not started (queued), 1 crashed; 2 to train" in done.stdout
    assert sweep_states(runs) == {1: "finished", 2: "finished", 3: "finished"}
    assert cli("runs", "--sweep", "sw", runs=runs).stdout.strip().endswith("sweep sw: 3 of 3 runs finished")
    again = cli("resume", "--sweep", "sw", runs=runs)
    assert again.returncode == 0 and "0 to train" in again.stdout


def test_a_sweep_killed_before_its_runs_were_made_creates_them_from_its_plan(tmp_path):
    """A kill -9 between the plan and the runs' folders: `resume --sweep` makes the runs the plan holds."""
    from core.spec.grid import expand
    from core.store import sweeps
    from core.store.runs import with_fixed_data_dir
    from tests.conftest import tiny_config

    runs = tmp_path / "runs"
    configs = expand(tiny_config(epochs=1, max_train_images=64, max_test_images=32), sweeps={"seed": [1, 2]},
                     sweep_name="half")
    sweeps.add_to_plan(runs, "half", [with_fixed_data_dir(c) for c in configs])
    RunStore(runs).create(configs[0])                      # made, its id not yet recorded in the plan
    listed = cli("runs", "--sweep", "half", runs=runs)
    assert "1 not started (queued), 1 planned but never created; it is incomplete" in listed.stdout, listed.stdout
    done = cli("resume", "--sweep", "half", runs=runs, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sweep_states(runs) == {1: "finished", 2: "finished"}
    assert {e["run"] for e in json.loads(sweeps.plan_path(runs, "half").read_text())["runs"]} == \
        {i.id for i in RunStore(runs).list()}


def test_resume_sweep_refuses_what_it_cannot_take(tmp_path):
    runs = tmp_path / "runs"
    res = cli("resume", "--sweep", "nope", runs=runs)
    assert res.returncode == 2 and "no runs of a sweep named 'nope'" in res.stderr
    res = cli("resume", "x", "--sweep", "nope", runs=runs)
    assert res.returncode == 2 and "--sweep: it picks the runs itself" in res.stderr
    res = cli("resume", runs=runs)
    assert res.returncode == 2 and "name the run to resume" in res.stderr


@pytest.mark.timeout(900)      # several processes start torch; minutes on a loaded machine
def test_repeated_kill_9_of_a_sweep_loses_nothing(tmp_path):
    """bench/kill_loop.py's experiment with two kills at random moments (the bench runs ten)."""
    assert sweep_experiment(tmp_path / "runs", 2, random.Random(35), epochs=2, seeds=2) == []


# -- 2: a stopped run whose checkpoint.pt is gone ----------------------------------------------------------------------
def logs_of(run) -> dict[str, bytes]:
    return {name: (run.path / name).read_bytes() for name in ("status.json", "epochs.jsonl", "steps.jsonl")}


def test_a_run_that_trained_but_lost_its_checkpoint_is_damaged_and_only_repair_starts_it_over(tmp_path, capsys):
    from cli.main import main
    from core.train.trainer import Trainer
    from tests.conftest import tiny_config
    from tests.stopping import StopAfter

    root = tmp_path / "runs"
    run = RunStore(root).create(tiny_config(epochs=2))
    assert Trainer(run, stop_event=StopAfter(10)).run() == "stopped"      # epoch 1 done, stopped in epoch 2
    run.checkpoint_path.unlink()
    before = logs_of(run)
    info = run.info()
    assert info.state == "damaged" and not info.repairable and info.restartable
    assert "checkpoint.pt is missing, though the run has trained (1 epoch done, step 10)" in info.error
    assert "resume --repair starts it over from step 0" in info.error

    assert main(["resume", run.id, "--runs-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert "resuming would start it over from step 0 and drop its records" in err and f"{run.id} --repair" in err
    assert logs_of(run) == before                                         # nothing cut back unasked
    with pytest.raises(RunError, match="checkpoint.pt is missing"):       # the app's and the scheduler's trainer too
        Trainer(run).run()
    assert logs_of(run) == before

    assert main(["resume", run.id, "--repair", "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "repaired: checkpoint.pt is missing: started over from step 0; dropped 1 epoch record (the last, " \
           "epoch 1: test error" in out
    assert [row["epoch"] for row in run.read_epochs()] == [1, 2] and run.info().state == "finished"
    assert any("started over from step 0" in line for line in run.read_events())

    run.checkpoint_path.unlink()                  # a finished run keeps its results, but cannot be made longer
    assert run.info().state == "finished"
    assert main(["resume", run.id, "--epochs", "3", "--runs-dir", str(root)]) == 1
    assert "has no checkpoint.pt to continue from" in capsys.readouterr().err
    assert [row["epoch"] for row in run.read_epochs()] == [1, 2]


def test_a_run_that_crashed_in_its_first_epoch_without_a_checkpoint_still_resumes(tmp_path):
    """No checkpoint was ever written (a crash before the first epoch's end): starting over loses nothing."""
    from core.store.info import lost_checkpoint

    assert lost_checkpoint("crashed", {"epoch": 0, "step": 5}, 0, tmp_path / "checkpoint.pt") == ""
    assert lost_checkpoint("queued", {"epoch": 0, "step": 5}, 0, tmp_path / "checkpoint.pt") == ""   # a retry
    assert lost_checkpoint("stopped", {"epoch": 0, "step": 5}, 0, tmp_path / "checkpoint.pt")
    assert lost_checkpoint("failed", {"epoch": 1, "step": 8}, 1, tmp_path / "checkpoint.pt")
    # killed between epoch 1's row and its checkpoint: status.json still says epoch 0, and nothing saved is lost
    assert lost_checkpoint("crashed", {"epoch": 0, "step": 8}, 1, tmp_path / "checkpoint.pt") == ""
    assert lost_checkpoint("crashed", {"epoch": 1, "step": 12}, 2, tmp_path / "x.pt")


# -- 9: an edited config.json, a foreign or forged checkpoint ---------------------------------------------------------
def stopped_run(root, **overrides):
    from core.train.trainer import Trainer
    from tests.conftest import tiny_config
    from tests.stopping import StopAfter

    run = RunStore(root).create(tiny_config(epochs=2, **overrides))
    assert Trainer(run, stop_event=StopAfter(10)).run() == "stopped"      # epoch 1 done, stopped in epoch 2
    return run


def edit_config(run, **values) -> None:
    data = json.loads(run.config_path.read_text())
    run.config_path.write_text(json.dumps({**data, **values}))


def every_file(run) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.path.iterdir()) if p.is_file() and p.name != "lock"}


def test_an_edited_config_or_a_foreign_checkpoint_is_refused_untouched_and_repair_restores_the_checkpoints(
        tmp_path, capsys):
    from cli.main import main
    from core.train.trainer import Trainer

    root = tmp_path / "runs"
    run = stopped_run(root)
    edit_config(run, depth=14, batch_size=64)
    before = every_file(run)
    assert main(["resume", run.id, "--runs-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert "config.json differs from the settings checkpoint.pt was saved with (depth 14 in config.json, 8 in " \
           "checkpoint.pt; batch_size 64 in config.json, 32 in checkpoint.pt)" in err, err
    assert "resume --repair puts checkpoint.pt's values back into config.json" in err and "Error(s)" not in err
    assert every_file(run) == before                                      # refused before the run was touched
    with pytest.raises(RunError, match="depth 14 in config.json"):        # the app's trainer: the same, untouched
        Trainer(run).run()
    assert every_file(run) == before

    assert main(["resume", run.id, "--repair", "--runs-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "repaired: config.json: depth 14 in config.json, 8 in checkpoint.pt; batch_size 64" in out
    assert run.read_config().depth == 8 and run.read_config().batch_size == 32 and run.info().state == "finished"

    other = stopped_run(root, width=8)                       # another net's checkpoint copied in
    foreign = stopped_run(root)
    foreign.checkpoint_path.write_bytes(other.checkpoint_path.read_bytes())
    assert main(["resume", foreign.id, "--runs-dir", str(root)]) == 1
    assert "width 4 in config.json, 8 in checkpoint.pt" in capsys.readouterr().err


def test_an_edited_lr_applies_and_events_log_says_what_changed(tmp_path, capsys):
    from cli.main import main

    root = tmp_path / "runs"
    run = stopped_run(root)
    edit_config(run, lr=0.02)
    assert main(["resume", run.id, "--runs-dir", str(root)]) == 0
    assert any("settings changed since checkpoint.pt was saved (they apply from here on): lr 0.02 in config.json, "
               "0.05 in checkpoint.pt" in line for line in run.read_events())
    assert run.read_epochs()[-1]["lr"] == 0.02


@pytest.mark.parametrize("epoch, said", [(10 ** 6, "says epoch 1000000, but the run's records end at epoch 1"),
                                         (-5, "says epoch -5, step 10, which no run reaches")])
def test_a_forged_checkpoint_epoch_is_checked_against_the_runs_records(tmp_path, capsys, epoch, said):
    import torch

    from cli.main import main

    root = tmp_path / "runs"
    run = stopped_run(root)
    ckpt = torch.load(run.checkpoint_path, weights_only=True)
    torch.save({**ckpt, "epoch": epoch}, run.checkpoint_path)
    before = every_file(run)
    assert main(["resume", run.id, "--runs-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert said in err and "it cannot be resumed: start a new run" in err, err
    assert every_file(run) == before


# -- 5, 7: non-finite records; a bad checkpoint in a report ---------------------------------------------------------
def test_a_nan_record_makes_its_run_damaged_and_a_bad_checkpoint_is_left_out_of_the_report_with_a_note(
        tmp_path, capsys):
    import torch

    from cli.main import main
    from core.train.trainer import Trainer
    from tests.conftest import tiny_config

    root = tmp_path / "runs"
    runs = []
    for seed in (1, 2, 3, 4):
        run = RunStore(root).create(tiny_config(epochs=1, seed=seed, max_train_images=64, max_test_images=32))
        assert Trainer(run).run() == "finished"
        runs.append(run)
    nan_run, foreign, broken, _ = runs
    rows = nan_run.read_epochs()
    nan_run.epochs_path.write_text("".join(json.dumps({**r, "test_err": math.nan}) + "\n" for r in rows))
    ckpt = torch.load(foreign.checkpoint_path, weights_only=True)
    torch.save({**ckpt, "config": {**ckpt["config"], "depth": 14}}, foreign.checkpoint_path)
    ckpt = torch.load(broken.checkpoint_path, weights_only=True)
    name, weight = next(iter(ckpt["model"].items()))
    torch.save({**ckpt, "model": {**ckpt["model"], name: weight[:1]}}, broken.checkpoint_path)

    assert main(["runs", "--format", "json", "--runs-dir", str(root)]) == 0
    listed = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed[nan_run.id]["status"] == "damaged"
    assert "epochs.jsonl: line 1 'test_err' is NaN, not a number" in listed[nan_run.id]["error"]
    assert listed[foreign.id]["status"] == "damaged"           # a mismatched checkpoint: listed as such (item 7)
    assert "checkpoint.pt was saved with (depth 8 in config.json, 14 in checkpoint.pt)" in listed[foreign.id]["error"]

    out = tmp_path / "rep"
    assert main(["report", "--all", "--out", str(out), "--format", "md,csv,png", "--device", "cpu",
                 "--runs-dir", str(root)]) == 0
    said = capsys.readouterr().out
    assert f"left out {nan_run.id}: it is damaged" in said
    assert f"left out {foreign.id}: it is damaged (config.json differs from the settings checkpoint.pt was saved " \
           f"with (depth 8 in config.json, 14 in checkpoint.pt))" in said, said
    assert f"Fig. 7 leaves out {broken.id}: checkpoint.pt does not fit its net (RuntimeError" in said
    table = (out / "table6.csv").read_text()
    assert "nan" not in table.lower() and ",2" in table, table          # one group of the two sound runs
    assert (out / "fig7.png").exists()

    assert main(["eval", broken.id, "--layer-responses", "--device", "cpu", "--runs-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not fit its net" in err and "Traceback" not in err


def test_an_evaluation_that_is_not_finite_ends_the_run_diverged_and_writes_no_such_record(tmp_path, monkeypatch):
    from core.train import setup as setup_module
    from core.train.trainer import Trainer
    from tests.conftest import tiny_config

    monkeypatch.setattr(setup_module.Setup, "evaluate", lambda self: {"test": (math.inf, 90.0)})
    run = RunStore(tmp_path).create(tiny_config(epochs=1, max_train_images=64, max_test_images=32))
    trainer = Trainer(run)
    assert trainer.run() == "diverged" and "the test loss became inf at the end of epoch 1" in trainer.message
    assert run.read_epochs() == [] and run.info().state == "diverged"


# -- 8: reports appear whole or not at all -----------------------------------------------------------------------------
def finished_run(root):
    from core.train.trainer import Trainer
    from tests.conftest import tiny_config

    run = RunStore(root).create(tiny_config(epochs=1, max_train_images=64, max_test_images=32))
    assert Trainer(run).run() == "finished"
    return run


def test_a_report_cut_short_by_a_full_disk_writes_nothing_and_says_so(tmp_path, capsys, monkeypatch):
    import errno

    from cli.main import main
    from core.results import figures

    root = tmp_path / "runs"
    finished_run(root)
    real_save = figures.save

    def full_after_one_file(fig, out_dir, stem, formats=figures.FIGURE_FORMATS):
        real_save(fig, out_dir, stem, formats[:1])
        raise OSError(errno.ENOSPC, "No space left on device")        # matplotlib names no file

    monkeypatch.setattr(figures, "save", full_after_one_file)
    reports = tmp_path / "reports"
    code = main(["report", "--all", "--out", str(reports / "r"), "--no-layer-responses", "--runs-dir", str(root)])
    err = capsys.readouterr().err
    assert code == 1 and "disk full: free space on" in err and err.strip().endswith("nothing was written"), err
    assert list(reports.iterdir()) == []                                   # no report folder, no hidden leftover


def test_a_report_into_an_existing_folder_replaces_each_file_whole_and_leftovers_are_removed(tmp_path, capsys):
    import subprocess

    from cli.main import main
    from core.results.publish import PARTIAL

    root = tmp_path / "runs"
    finished_run(root)
    out = tmp_path / "reports" / "r"
    out.mkdir(parents=True)
    (out / "mine.txt").write_text("kept")
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = out.parent / f".r.partial-{dead.pid}-abcdef"               # a report killed midway left it
    leftover.mkdir()
    (leftover / "fig6.png").write_bytes(b"\x89PNG torn")
    assert PARTIAL.fullmatch(leftover.name)
    assert main(["report", "--all", "--out", str(out), "--format", "md,csv", "--no-layer-responses",
                 "--runs-dir", str(root)]) == 0
    assert {p.name for p in out.iterdir()} == {"mine.txt", "table6.md", "table6.csv", "report.md"}
    assert [p.name for p in out.parent.iterdir()] == ["r"]


@pytest.mark.timeout(900)      # several processes start torch; minutes on a loaded machine
def test_repeated_kill_9_of_a_report_tears_nothing(tmp_path):
    """bench/kill_loop.py's experiment with two kills at random moments (the bench runs ten)."""
    from bench.kill_loop import report_experiment

    runs = tmp_path / "runs"
    assert sweep_experiment(runs, 0, random.Random(0), epochs=1, seeds=2) == []
    assert report_experiment(runs, tmp_path / "reports", 2, random.Random(35)) == []


# -- 4: a run that cannot fit the device's memory ----------------------------------------------------------------------
def test_a_run_that_cannot_fit_the_devices_memory_is_refused_up_front_unless_asked(tmp_path, capsys, monkeypatch):
    from cli.main import main
    from core.spec.limits import fit_error
    from core.train import device as device_module
    from tests.cli.test_cli import TINY
    from tests.conftest import tiny_config

    runs = tmp_path / "runs"
    big = ["--dataset", "synthetic", "--depth", "20000", "--width", "8", "--device", "cpu", "--epochs", "1"]
    assert main(["train", *big, "--runs-dir", str(runs)]) == 2           # issue 35: it grew to 23.5 GB, OOM-killed
    err = capsys.readouterr().err
    assert "ResNet-20000 at width 8 needs about" in err and "GiB of cpu" in err and "--ignore-memory" in err
    assert main(["train", *big[:2], *big[4:], "--sweep", "depth=8,20000", "--runs-dir", str(runs)]) == 2
    assert "ResNet-20000" in capsys.readouterr().err
    assert not runs.exists()

    monkeypatch.setattr(device_module, "total_memory", lambda device: 1000)   # a tiny net on a tiny machine
    assert main(["train", *TINY, "--epochs", "1", "--runs-dir", str(runs)]) == 2
    assert "more than the 0.0 GiB of cpu" in capsys.readouterr().err and not runs.exists()
    assert main(["train", *TINY, "--epochs", "1", "--ignore-memory", "--runs-dir", str(runs)]) == 0
    # a GPU splits a batch that does not fit (on_oom split): only what one image needs must fit
    cfg = tiny_config(depth=1202, width=16, batch_size=4096)
    assert fit_error(cfg, 80 * 2 ** 30, "cuda:0", splits=False) and not fit_error(cfg, 80 * 2 ** 30, "cuda:0", True)


# -- 10: control characters from the runs folder's files ---------------------------------------------------------------
def test_slot_names_from_scheduler_json_reach_no_terminal_raw(tmp_path, capsys):
    from cli.main import main
    from core.serve import scheduler_control as S

    root = tmp_path / "runs"
    root.mkdir()
    osc = "cpu\x1b]0;owned\x07#0"                            # it changed a tmux pane's title
    (root / S.STATE_FILE).write_text(json.dumps({"pid": 4242, "host": "h", "updated_at": 1.0, "devices": ["cpu"],
                                                 "slots": [{"slot": osc, "device": "cpu", "run": None}]}))
    lock = S.lock_of(root)
    lock.acquire()
    try:
        assert "\x1b" not in S.describe(root) and "\\x1b]0;owned\\x07" in S.describe(root)
        for argv in (["scheduler", "--devices", "cpu"], ["queue"]):
            assert main([*argv, "--runs-dir", str(root)]) == 0
            out = capsys.readouterr().out
            assert "\x1b" not in out and "\x07" not in out and "owned" in out, (argv, out)
    finally:
        lock.release()


# -- 11: show --json is JSON -------------------------------------------------------------------------------------------
def test_show_json_prints_null_for_a_non_finite_number_never_infinity(tmp_path, capsys, monkeypatch):
    import cli.tables
    from cli.main import main
    from tests.conftest import tiny_config

    root = tmp_path / "runs"
    run = RunStore(root).create(tiny_config())
    edit_config(run, lr=math.inf)                          # a damaged run now: its config is not shown raw
    real = cli.tables.show_data
    monkeypatch.setattr(cli.tables, "show_data", lambda r, i: {**real(r, i), "eta_s": math.inf,
                                                               "epochs": [{"test_loss": math.nan}]})
    assert main(["show", run.id, "--json", "--runs-dir", str(root)]) == 0
    text = capsys.readouterr().out
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in show --json"))
    assert data["eta_s"] is None and data["epochs"] == [{"test_loss": None}]
    assert data["note"] == "2 numbers that are NaN or infinite shown as null"


# -- 12: odd inputs ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["train", "--sweep", "lr=0.1,,0.2"], "--sweep lr: an empty value in '0.1,,0.2'"),
    (["train", "--sweep", "seed=1,2,"], "--sweep seed: an empty value in '1,2,'"),
    (["queue", "add", "--seeds", "1,,2"], "--seeds: an empty value"),
    (["train", "--variant", "lr=0.1", "--variant", "lr=0.1"], "--variant 'lr=0.1': given twice"),
    (["scheduler", "--devices", ","], "--devices: no device in ','"),
    (["scheduler", "--devices", "cpu", "--per-device", "100000"], "--per-device: at most 64 runs share one device"),
    (["report", "--all", "--format", ""], "--format: empty; give a comma-separated list"),
])
def test_odd_inputs_are_refused_with_exit_2_and_nothing_made(tmp_path, capsys, argv, message):
    from cli.main import main
    from tests.cli.test_cli import TINY

    runs = tmp_path / "runs"
    config = [a for a in TINY if a not in ("--depth", "8")] if argv[0] != "scheduler" and argv[:1] != ["report"] \
        else []
    assert main([*argv, *config, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not runs.exists() or not any(runs.iterdir())


def test_a_diverged_run_is_said_to_have_diverged_in_a_report(tmp_path, capsys):
    from cli.main import main

    root = tmp_path / "runs"
    run = finished_run(root)
    status = json.loads(run.status_path.read_text())
    run.status_path.write_text(json.dumps({**status, "state": "diverged", "error": "loss became nan at step 9"}))
    out = tmp_path / "rep"
    assert main(["report", run.id, "--out", str(out), "--format", "md", "--no-layer-responses",
                 "--runs-dir", str(root)]) == 0
    assert f"{run.id} diverged (loss became nan at step 9): its numbers are those of its last finished epoch" in \
        capsys.readouterr().out
    assert "diverged (loss became nan at step 9)" in (out / "report.md").read_text()
