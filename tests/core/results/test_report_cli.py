"""`report`: the folder it writes, and every bad input as one message with exit 2 and nothing written."""
from __future__ import annotations

import sys

import pytest

from cli.main import main
from core.store.runs import RunStore
from tests.core.results_helpers import fake_run


def report(tmp_path, *args) -> int:
    return main(["report", *map(str, args), "--runs-dir", str(tmp_path / "runs")])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_report_writes_tables_figures_and_report_md(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    for seed, err in ((1, 9.0), (2, 10.0)):
        fake_run(store, [30.0, err], depth=20, shortcut="A", seed=seed, dataset="cifar10")
        fake_run(store, [40.0, err + 3], depth=20, shortcut="none", seed=seed, dataset="cifar10")
    out = tmp_path / "rep"
    assert report(tmp_path, "--all", "--out", out) == 0
    printed = capsys.readouterr().out
    assert f"folder: {out.resolve()}" in printed
    assert "note: Fig. 7 leaves out" in printed           # fake runs have no checkpoint to take responses from
    names = sorted(p.name for p in out.iterdir())
    assert names == ["fig6.pdf", "fig6.png", "fig6.svg", "report.md", "table6.csv", "table6.md", "table6.tex"]
    md = (out / "report.md").read_text()
    assert "| 20 | 12.00 (12.50 ± 0.71, n=2)‡ | 9.00 (9.50 ± 0.71, n=2)‡ | 8.75 | 6.89 |" in md
    assert "![Training and test error over iterations](fig6.png)" in md
    assert "git_commit `abc123`" in md and "## Appendix: settings and environment" in md


def test_report_formats_choose_the_files(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    run = fake_run(store, [9.0], dataset="cifar10")
    out = tmp_path / "rep"
    assert report(tmp_path, run.id, "--out", out, "--format", "csv,svg", "--no-layer-responses") == 0
    assert sorted(p.name for p in out.iterdir()) == ["fig6.svg", "report.md", "table6.csv"]
    assert "![Training and test error over iterations](fig6.svg)" in (out / "report.md").read_text()


@pytest.mark.parametrize("case, message", [
    ("nothing", "name the runs to report on"),
    ("empty", "no runs to report on"),
    ("unknown", "no run 'nope'"),
    ("both", "name runs or use --all, not both"),
    ("no-epoch", "has no finished epoch yet"),
    ("format", "--format: unknown format jpg"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case, message):
    store = RunStore(tmp_path / "runs")
    (tmp_path / "runs").mkdir()
    a = fake_run(store, [9.0], dataset="synthetic") if case in ("both", "format", "no-epoch") else None
    args = {"nothing": [], "empty": ["--all"], "unknown": ["nope"], "both": [a and a.id, "--all"],
            "format": [a and a.id, "--format", "png,jpg"]}.get(case)
    if case == "no-epoch":
        args = [a.id, store.create(a.read_config()).id]
    out = tmp_path / "rep"
    assert report(tmp_path, *args, "--out", out) == 2
    assert message in one_error_line(capsys)
    assert not out.exists() and not (tmp_path / "reports").exists()


def test_missing_matplotlib_is_named_with_its_fix(tmp_path, capsys, monkeypatch):
    run = fake_run(RunStore(tmp_path / "runs"), [9.0])
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # `import matplotlib` now fails as if not installed
    out = tmp_path / "rep"
    assert report(tmp_path, run.id, "--out", out) == 1
    assert "pip install matplotlib" in one_error_line(capsys)
    assert not out.exists()


def test_report_md_appendix_says_each_setting_once_and_only_what_differs(tmp_path, capsys):
    # the appendix had two 'epochs' columns (the setting and done/total), repeated every environment field of 23
    # runs because one had another git commit, and a note listing 20 run ids
    store = RunStore(tmp_path / "runs")
    env = {"torch": "2.x", "python": "3.11", "device": "cpu", "git_commit": "abc123"}
    for seed in range(1, 9):
        fake_run(store, [30.0, 9.0 + seed], depth=20, shortcut="A", seed=seed, dataset="cifar10",
                 total_epochs=2 + seed % 2, env={**env, "git_commit": "def456"} if seed == 8 else env)
    out = tmp_path / "rep"
    assert report(tmp_path, "--all", "--out", out, "--format", "md,png") == 0
    md = (out / "report.md").read_text()
    head = next(line for line in md.splitlines() if line.startswith("| run | depth"))
    assert head.count("| epochs |") == 1, head
    env_head = next(line for line in md.splitlines() if line.startswith("| run | ") and "git_commit" in line)
    assert env_head == "| run | git_commit |", env_head
    assert "torch `2.x`" in md and "python `3.11`" in md                 # the shared ones: said once, in a sentence
    note = next(line for line in md.splitlines() if "Fig. 7 leaves out" in line)
    assert "and 2 more" in note and note.count(", ") <= 6, note


def test_report_all_gives_each_data_set_its_own_section(tmp_path, capsys):
    # one run of another data set made `report --all` refuse the whole folder (exit 2)
    store = RunStore(tmp_path / "runs")
    for seed, err in ((1, 9.0), (2, 10.0)):
        fake_run(store, [30.0, err], seed=seed, dataset="cifar10")
    odd = fake_run(store, [50.0], seed=1, dataset="synthetic")
    out = tmp_path / "rep"
    assert report(tmp_path, "--all", "--out", out, "--format", "md,csv") == 0, capsys.readouterr().err
    assert "report of 3 runs in 2 groups" in capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert "## CIFAR-10" in md and "## Synthetic data" in md, md
    assert md.index("## CIFAR-10") < md.index("## Synthetic data")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["cifar10-table6.csv", "cifar10-table6.md", "report.md", "synthetic-table6.csv",
                     "synthetic-table6.md"], names
    assert "9.00 (9.50 ± 0.71, n=2)" in (out / "cifar10-table6.md").read_text()     # never pooled with the odd run
    assert "50.00 (n=1)" in (out / "synthetic-table6.md").read_text()
    assert odd.id in md
