"""`study`: trials as runs through the scheduler, ASHA stops and promotions, kill -9 of the driver and of a trial,
two drivers on one storage, bad input, and `study show --json` against optuna.load_study."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from core.store.runs import RunStore
from tests.cli.test_cli import REPO, env

TINY = ["--dataset", "synthetic", "--no-download", "--depth", "8", "--width", "4", "--max-train-images", "256",
        "--max-test-images", "64", "--val-split", "64", "--batch-size", "32", "--epochs", "3", "--schedule", "cosine",
        "--optimizer", "adam", "--device", "cpu", "--precision", "fp32", "--log-every", "4", "--deterministic",
        "--space", "lr=log:1e-4:1e-1", "--space", "weight_decay=log:1e-5:1e-3", "--min-epochs", "1", "--eta", "2",
        "--sampler-seed", "1", "--devices", "cpu"]


def study(*args, runs: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tui_app.py", "study", *map(str, args), "--runs-dir", str(runs)], cwd=REPO,
                          env=env(), capture_output=True, text=True, timeout=timeout)


def start(*args, runs: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "tui_app.py", "study", *map(str, args), "--runs-dir", str(runs)],
                            cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def show(name: str, runs: Path, *extra) -> dict:
    out = study("show", name, "--json", *extra, runs=runs, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def study_runs(runs: Path, name: str) -> dict[int, list[str]]:
    """trial number -> the run folders whose config names this study and trial."""
    out: dict[int, list[str]] = {}
    for run in RunStore(runs).runs():
        cfg = run.read_config()
        if cfg.study == name and cfg.trial >= 0:
            out.setdefault(cfg.trial, []).append(run.id)
    return out


def events(runs: Path) -> str:
    return "\n".join((p / "events.log").read_text() for p in sorted(runs.iterdir()) if (p / "events.log").exists())


def test_an_asha_study_on_real_images_stops_trials_at_rungs_and_promotes_one(folders, cifar_tiny):
    runs = folders()
    real = [a if a != "synthetic" else "cifar10" for a in TINY]
    real = [*real, "--data-dir", cifar_tiny, "--max-train-images", "0", "--max-test-images", "0", "--val-split", "50",
            "--epochs", "4", "--trials", "6"]
    out = study("asha", *real, runs=runs)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "rungs at epochs 1, 2" in out.stdout and "best: trial" in out.stdout
    data = show("asha", runs)
    assert [t["number"] for t in data["trials"]] == list(range(6))
    assert {t["state"] for t in data["trials"]} <= {"complete", "pruned"}
    assert any(t["state"] == "pruned" and t["epochs"] < 4 for t in data["trials"])
    assert any(t["promoted_at"] for t in data["trials"])
    made = study_runs(runs, "asha")
    assert sorted(made) == list(range(6)) and all(len(v) == 1 for v in made.values())
    log = events(runs)
    assert "study asha: stopped at rung 1 (epoch 1): " in log and " at this rung, val err " in log
    assert "(study asha: promoted at rung" in log and "resumed at epoch 2" in log
    # Optuna opens it as any other study: the same trials, states and values
    import optuna

    loaded = optuna.load_study(study_name="asha", storage=f"sqlite:///{runs / 'studies.db'}")
    assert [(t.number, t.state.name.lower().replace("fail", "failed"), t.values) for t in loaded.trials] == \
        [(t["number"], t["state"], t["values"]) for t in data["trials"]]
    assert loaded.best_trial.number == data["best"][0]["number"]
    listed = subprocess.run([sys.executable, "tui_app.py", "runs", "--study", "asha", "--format", "json",
                             "--runs-dir", str(runs)], cwd=REPO, env=env(), capture_output=True, text=True)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)) == 6
    rep = subprocess.run([sys.executable, "tui_app.py", "report", "--study", "asha", "--out", str(runs.parent / "rep"),
                          "--runs-dir", str(runs)], cwd=REPO, env=env(), capture_output=True, text=True)
    assert rep.returncode == 0, rep.stderr
    for name in ("history", "intermediate", "slices", "parallel"):
        assert (runs.parent / "rep" / f"{name}.png").stat().st_size > 10_000, name
    text = (runs.parent / "rep" / "report.md").read_text()
    assert "Study asha: 6 trials of ResNet-8" in text and "50 of them held out for validation" in text
    assert "## Top trials (chosen on validation)" in text and "study confirm asha" in text


def test_two_objectives_give_a_pareto_front_and_the_median_rule_stops_for_good(folders):
    runs = folders()
    out = study("two", *TINY, "--trials", "3", "--objective", "val_err", "--objective", "train_time", "--pruner",
                "none", runs=runs)
    assert out.returncode == 0, out.stdout + out.stderr
    data = show("two", runs)
    assert data["directions"] == ["minimize", "minimize"] and data["objectives"] == ["val_err", "train_time"]
    assert [len(t["values"]) for t in data["trials"]] == [2, 2, 2] and data["best"] and data["rungs"] == []
    rep = subprocess.run([sys.executable, "tui_app.py", "report", "--study", "two", "--out", str(runs.parent / "rep"),
                          "--runs-dir", str(runs)], cwd=REPO, env=env(), capture_output=True, text=True)
    assert rep.returncode == 0 and (runs.parent / "rep" / "pareto.png").exists(), rep.stderr
    out = study("med", *TINY, "--trials", "4", "--pruner", "median", runs=runs)
    assert out.returncode == 0, out.stdout + out.stderr
    data = show("med", runs)
    assert data["rungs"] == [1, 2] and {t["state"] for t in data["trials"]} <= {"complete", "pruned"}
    for t in data["trials"]:
        if t["state"] == "pruned":      # a median stop is final: it never trained past it
            assert t["epochs"] < 3 and t["run_state"] == "stopped"
    log = events(runs)
    assert "by the median rule" in log or all(t["state"] == "complete" for t in data["trials"])


@pytest.mark.parametrize("extra,message", [
    (["--space", "lr=log:0:1"], "--space lr: a log range needs a low end above 0"),
    (["--space", "optimizer=sgd,rmsprop"], "--space optimizer: rmsprop is outside"),
    (["--space", "epochs=2:9"], "--space epochs: epochs is one value for every trial"),
    (["--space", "lr=0.1:0.01"], "--space lr: a range runs from low to high"),
    ([], "--space: give at least one"),
    (["--space", "lr=log:1e-3:1e-1", "--val-split", "0"], "--val-split: a study measures its objective on images "
                                                           "held out of the training set, never on the test set"),
    (["--space", "lr=log:1e-3:1e-1", "--eta", "1"], "--eta: must be 2 or more"),
    (["--space", "lr=log:1e-3:1e-1", "--objective", "test_err"], "--objective: one or two of val_err, train_time"),
    (["--space", "lr=log:1e-3:1e-1", "--sampler", "grid"], "--sampler: grid takes choices only"),
    (["--space", "lr=log:1e-3:1e-1", "--storage", "journal:{tmp}/j.log", "--pruner", "hyperband"],
     "--pruner: unknown pruner"),
])
def test_bad_input_exits_2_and_creates_nothing(tmp_path, capsys, extra, message):
    runs = tmp_path / "runs"
    argv = [a for i, a in enumerate(TINY) if "--space" not in (a, TINY[i - 1])]
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    assert main(["study", "bad", *argv, *extra, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert message in " ".join(err.split()), err
    assert not runs.exists() and not (tmp_path / "j.log").exists()


def test_show_and_confirm_of_a_missing_study_say_how_to_start_one(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["study", "show", "nope", "--runs-dir", str(runs)]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert not runs.exists()
