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


def test_a_shortened_recipe_scales_its_milestones_and_says_so_and_bad_ones_are_refused(tmp_path, capsys):
    """One rule for milestones (issue 18, point 6): iteration milestones past the end were accepted silently (a
    3-epoch run trained at a constant 0.1 under 32000,48000) while epoch ones were refused. A recipe shortened
    without milestones now has them scaled to the same fractions (said on stdout and in events.log); milestones a
    user gives past the end are refused in either unit with what to pass."""
    from core.data.plan import milestone_error, scale_milestones
    from core.spec.config import RunConfig
    from core.spec.presets import preset

    short = RunConfig().with_overrides(iterations=20)
    assert scale_milestones(short, RunConfig())[0].milestones == (10, 15)
    lab = preset("lab-report")
    scaled, note = scale_milestones(lab.with_overrides(epochs=6), lab)    # 51,75 of 164 epochs -> 1.87, 2.74
    assert scaled.milestones == (2, 3) and "scaled from 51,75 of 164 epochs to 2,3" in note
    given = RunConfig(dataset="synthetic", epochs=3, iterations=0, milestones=(32000, 48000), milestone_unit="iter")
    assert "lie past the end of this run (3 epochs, about 48 iterations)" in milestone_error(given)
    assert "e.g. 24,36" in milestone_error(given)

    runs = tmp_path / "runs"
    assert main(["train", *TINY, "--epochs", "2", "--schedule", "multistep", "--milestone-unit", "iter",
                 "--milestones", "100,200", "--runs-dir", str(runs)]) == 2
    assert "--milestones: milestones 100,200 (iterations) lie past the end" in capsys.readouterr().err
    assert not runs.exists()
    res = cli("train", *TINY, "--max-train-images", "64", "--epochs", "2", "--schedule", "multistep", runs=runs)
    assert res.returncode == 0, res.stderr
    assert "note: milestones scaled from 32000,48000 of 64,000 iterations to 2,3 of this run's 4" in res.stderr
    assert res.stdout.startswith("run ")                  # the run id stays the first line
    (info,) = RunStore(runs).list()
    assert info.config.milestones == (2, 3)
    assert "milestones scaled from 32000,48000" in (info.path / "events.log").read_text()


def test_the_milestone_note_is_said_only_of_runs_whose_milestones_were_scaled(tmp_path):
    """Issue 34, item 8: `--sweep milestones="2|4"` printed and logged "milestones scaled from 51,75 ... to 2,3" into
    every run's events.log, though the runs used [2] and [4]."""
    tiny = [a if a != "constant" else "multistep" for a in TINY] + ["--widths", "4,8,16", "--stem-width", "4"]
    runs = tmp_path / "runs"           # trained in a process of its own, as the other training tests here
    res = cli("train", "--preset", "lab-report", *tiny, "--epochs", "6", "--sweep", "milestones=2|4", runs=runs)
    assert res.returncode == 0, res.stderr
    assert "scaled" not in res.stderr
    infos = RunStore(runs).list()
    assert sorted(i.config.milestones for i in infos) == [(2,), (4,)]
    assert not any("scaled" in (i.path / "events.log").read_text() for i in infos)
    # a sweep of something else: every run's milestones are the recipe's scaled (51,75 of 164 -> 2,3 of 6): said
    runs = tmp_path / "runs2"
    res = cli("train", "--preset", "lab-report", *tiny, "--epochs", "6", "--sweep", "lr=0.1,0.05", runs=runs)
    assert res.returncode == 0, res.stderr
    assert "note: milestones scaled from 51,75 of 164 epochs to 2,3" in res.stderr
    infos = RunStore(runs).list()
    assert [i.config.milestones for i in infos] == [(2, 3), (2, 3)]
    assert all("milestones scaled from 51,75 of 164 epochs to 2,3" in (i.path / "events.log").read_text()
               for i in infos)


def test_note_sets_a_runs_tags_and_note_and_refuses_a_bad_tag(tmp_path, capsys):
    from core.spec.presets import preset
    from core.store.notes import read_notes

    store = RunStore(tmp_path / "runs")
    run = store.create(preset("quick", dataset="synthetic", name="r1"))
    assert main(["note", "r1", "lr too high", "--tag", "best", "--tag", "fig6", "--runs-dir", str(store.root)]) == 0
    assert "r1  tags: best fig6  note: lr too high" in capsys.readouterr().out
    assert main(["note", "r1", "--untag", "fig6", "--runs-dir", str(store.root)]) == 0
    assert read_notes(run.path) == {"tags": ["best"], "note": "lr too high"}
    assert main(["note", "r1", "--tag", "a/b", "--runs-dir", str(store.root)]) == 2
    assert "--tag: tag 'a/b'" in capsys.readouterr().err and read_notes(run.path)["tags"] == ["best"]
