"""Reliability, round 3 (issue 35): a killed sweep is finishable, a lost checkpoint never restarts a run silently,
an edited config or a foreign checkpoint is refused before the run is touched.

Each test here failed on the code before its fix.
"""
from __future__ import annotations

import json
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

    assert lost_checkpoint("crashed", {"epoch": 0, "step": 5}, [], tmp_path / "checkpoint.pt") == ""
    assert lost_checkpoint("stopped", {"epoch": 0, "step": 5}, [], tmp_path / "checkpoint.pt")
    assert lost_checkpoint("failed", {"epoch": 1, "step": 8}, [{"epoch": 1}], tmp_path / "checkpoint.pt")


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
