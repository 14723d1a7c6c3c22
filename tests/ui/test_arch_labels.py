"""Issue 22, point 2: the runs table (TUI and `runs`) names a follow-up net by its papers' label ('PreAct-164',
'WRN-28-10') and shows its paper's number; the paper's ResNets keep their depth."""
from __future__ import annotations

import json

import pytest

from cli.main import main
from core.store.runs import RunStore
from screens.widgets.run_table import row_cells
from tests.core.results_helpers import fake_run


@pytest.fixture
def runs(tmp_path):
    store = RunStore(tmp_path / "runs")
    c10 = dict(dataset="cifar10")
    fake_run(store, [7.0], depth=110, shortcut="A", width=16, name="res", **c10)
    fake_run(store, [6.0], depth=164, shortcut="B", width=16, arch="preact-bottleneck", name="pre", **c10)
    fake_run(store, [5.0], depth=28, shortcut="B", width=160, arch="wrn", dropout=0.3, name="wide", **c10)
    fake_run(store, [9.0], depth=16, shortcut="B", width=32, arch="wrn", name="small", **c10)
    return store


def test_table_rows_say_the_net_and_its_papers_number(runs):
    cells = {i.config.name: row_cells(i, False) for i in runs.list()}
    got = {name: (c["depth"].plain, c["paper"].plain) for name, c in cells.items()}
    assert got == {"res": ("110", "6.43"), "pre": ("PreAct-164", "5.46"), "wide": ("WRN-28-10", "3.89"),
                   "small": ("WRN-16-2", "-")}


def test_runs_command_shows_labels_and_papers_numbers(runs, tmp_path, capsys):
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "PreAct-164" in lines["pre"] and "5.46%" in lines["pre"]
    assert "WRN-28-10" in lines["wide"] and "3.89%" in lines["wide"] and " 110 " in lines["res"]
    assert main(["runs", "--format", "json", "--runs-dir", str(tmp_path / "runs")]) == 0
    rows = {r["model"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"ResNet-110", "PreAct-164", "WRN-28-10", "WRN-16-2"}
    assert rows["WRN-28-10"]["arch"] == "wrn" and rows["WRN-28-10"]["paper_err"] == 3.89
