"""Sweeps from the command line (issue 18): --sweep, --variant and --sweep-name on train and queue add; runs --sweep,
report --sweep; bad values name their flag and create nothing."""
from __future__ import annotations

import json

import pytest

from cli.main import main
from core.store.runs import RunStore
from tests.cli.test_cli import TINY, cli


@pytest.mark.parametrize("args, message", [
    (["train", "--sweep", "lr=0.1,x"], "--sweep lr: expected a number, got 'x'"),
    (["train", "--sweep", "momentum=0.9,1.5"], "--sweep momentum: momentum must be in [0, 1), got 1.5"),
    (["train", "--variant", "optimizer=adamx lr=0.001"], "--variant optimizer: unknown optimizer 'adamx'"),
    (["train", "--sweep", "lr=0.1,0.2", "--lr", "0.1"], "--sweep lr: give --lr or --sweep lr, not both"),
    (["train", "--sweep", "lr=0.1,0.2", "--variant", "lr=0.1"], "lr is both swept and set by a variant"),
    (["train", "--sweep", "foo=1"], "--sweep foo: unknown setting 'foo'"),
    (["train", "--sweep", "lr=0.1,0.2", "--sweep-name", "a b"], "--sweep-name: sweep name may use letters"),
    (["queue", "add", "--sweep", "milestones=2,4|x"], "--sweep milestones: expected a list of integers"),
])
def test_bad_sweeps_name_their_flag_exit_2_and_create_nothing(tmp_path, capsys, args, message):
    runs = tmp_path / "runs"
    assert main([*args, *TINY, "--epochs", "2", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not runs.exists()


def test_train_sweep_trains_each_run_records_name_and_data_then_runs_and_report_find_it(tmp_path):
    runs = tmp_path / "runs"
    res = cli("train", *TINY, "--max-train-images", "64", "--max-test-images", "32", "--epochs", "1",
              "--sweep", "lr=0.1,0.05", "--sweep-name", "lr-test", runs=runs)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "sweep lr-test: 2 runs, varying lr" in res.stdout and "[2/2] lr=0.05" in res.stdout
    assert "report --sweep lr-test" in res.stdout
    infos = RunStore(runs).list()
    assert sorted(i.config.lr for i in infos) == [0.05, 0.1] and {i.config.sweep_name for i in infos} == {"lr-test"}
    data = [i.status["data"] for i in infos]       # what each trained on, recorded at its start
    assert data[0] == data[1] and data[0]["train_images"] == 64 and data[0]["test_images"] == 32
    assert len(data[0]["fingerprint"]) == 16
    listed = cli("runs", "--sweep", "lr-test", "--format", "json", runs=runs)
    assert sorted(r["varies"] for r in json.loads(listed.stdout)) == ["lr=0.05", "lr=0.1"]
    assert "no runs of a sweep named 'nope'; sweeps here: lr-test" in cli("runs", "--sweep", "nope", runs=runs).stderr
    out = tmp_path / "rep"
    rep = cli("report", "--sweep", "lr-test", "--out", out, "--format", "md,csv", "--no-layer-responses", runs=runs)
    assert rep.returncode == 0, rep.stderr
    md = (out / "table.md").read_text()
    assert "| lr | test error (%) |" in md and "lr 0.05 vs 0.1:" in md
    assert "synthetic data, 64 training images, 32 test images" in md
