"""The depth x architecture table (core/results/arch_table.py): cells and the papers' numbers, by hand."""
from __future__ import annotations

import csv
import io

import pytest

from cli.main import main
from core.results.arch_table import build_arch_table, column_title, fits, to_csv, to_latex, to_markdown
from core.results.groups import group_runs
from core.store.runs import RunStore
from tests.core.results_helpers import fake_run


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def archs(store: RunStore, wrn_lr: float | None = None) -> RunStore:
    """CIFAR-10: ResNet-20 A seeds 1-2 (8.0, 9.0); PreAct-20 B seed 1 (9.5); PreAct-164 bottleneck B seeds 1-3
    (5.0, 6.0, 7.0); WRN-16-2 seed 1 (7.5); WRN-28-10 with dropout 0.3 seed 1 (4.0)."""
    c10 = dict(dataset="cifar10")
    for seed, err in ((1, 8.0), (2, 9.0)):
        fake_run(store, [20.0, err], depth=20, shortcut="A", seed=seed, width=16, **c10)
    fake_run(store, [20.0, 9.5], depth=20, shortcut="B", seed=1, arch="preact", width=16, **c10)
    for seed, err in ((1, 5.0), (2, 6.0), (3, 7.0)):
        fake_run(store, [20.0, err], depth=164, shortcut="B", seed=seed, arch="preact-bottleneck", width=16, **c10)
    fake_run(store, [20.0, 7.5], depth=16, shortcut="B", seed=1, arch="wrn", width=32,
             **({"lr": wrn_lr} if wrn_lr else {}), **c10)
    fake_run(store, [20.0, 4.0], depth=28, shortcut="B", seed=1, arch="wrn", width=160, dropout=0.3, **c10)
    return store


def md_rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("|")]


def test_rows_are_depths_columns_architectures_with_the_papers_numbers(store):
    groups = group_runs(archs(store).list())
    assert fits(groups)
    assert sorted(g.name for g in groups) == ["PreAct-164 B", "PreAct-20 B", "ResNet-20", "WRN-16-2 B",
                                              "WRN-28-10 B d0.3"]
    table = build_arch_table(groups)
    rows = md_rows(to_markdown(table))
    assert rows[0] == ["depth", "ResNet A", "ResNet A paper", "PreAct", "PreAct bottleneck",
                       "PreAct bottleneck paper", "WRN k=2", "WRN k=10 dropout 0.3", "WRN k=10 dropout 0.3 paper"]
    body = {r[0]: r[1:] for r in rows[2:]}
    assert list(body) == ["16", "20", "28", "164"]
    # by hand: ResNet-20 mean 8.5, sample std sqrt(0.5) = 0.707; PreAct-164 mean 6, std 1; papers 8.75 (He et al.
    # 2016 Table 6), 5.46 (He et al. 2016b), 3.89 (WRN-28-10, dropout 0.3); no paper number for PreAct-20, WRN-16-2
    assert body["20"] == ["8.00 (8.50 ± 0.71, n=2)", "8.75", "9.50 (n=1)", "-", "-", "-", "-", "-"]
    assert body["164"] == ["-", "-", "-", "5.00 (6.00 ± 1.00, n=3)", "5.46", "-", "-", "-"]
    assert body["16"] == ["-", "-", "-", "-", "-", "7.50 (n=1)", "-", "-"]
    assert body["28"] == ["-", "-", "-", "-", "-", "-", "4.00 (n=1)", "3.89"]
    assert "He et al. 2016 (Table 6, option A); He et al. 2016b; Zagoruyko & Komodakis 2016" in table.caption()

    lines = to_latex(table).splitlines()
    body_tex = lines[lines.index(r"\midrule") + 1: lines.index(r"\bottomrule")]
    assert body_tex[1] == r"20 & 8.00 (8.50 $\pm$ 0.71, n=2) & 8.75 & 9.50 (n=1) & - & - & - & - & - \\"

    cells = {(r["depth"], r["architecture"]): r for r in csv.DictReader(io.StringIO(to_csv(table)))}
    assert len(cells) == 5
    r = cells[("164", "PreAct bottleneck")]
    assert (r["arch"], r["n"], r["best"], r["mean"], r["std"], r["seeds"], r["paper"]) == (
        "preact-bottleneck", "3", "5.0000", "6.0000", "1.0000", "1 2 3", "5.4600")
    assert cells[("16", "WRN k=2")]["paper"] == "" and cells[("28", "WRN k=10 dropout 0.3")]["paper"] == "3.8900"


def test_a_columns_own_settings_are_said_once_and_settings_within_a_column_split_rows(store):
    archs(store, wrn_lr=0.1)            # the WRN-16-2 run alone trained at lr 0.1: that column's recipe
    table = build_arch_table(group_runs(store.list()))
    assert [r.label for r in table.rows] == ["16", "20", "28", "164"]
    assert table.recipes["WRN k=2"] == "lr=0.1" and table.recipes["ResNet A"] == "lr=0.05"
    assert "- WRN k=2: lr=0.1" in to_markdown(table)
    fake_run(store, [20.0, 8.5], depth=20, shortcut="A", seed=1, width=16, lr=0.2, dataset="cifar10")
    table = build_arch_table(group_runs(store.list()))   # now lr varies within the ResNet A column
    assert [r.label for r in table.rows][:3] == ["16 (lr=0.1)", "20 (lr=0.05)", "20 (lr=0.2)"]
    fake_run(store, [20.0, 8.5], depth=20, shortcut="A", seed=1, width=16, lr=0.2, milestones=(1,),
             schedule="multistep", dataset="cifar10")
    labels = [r.label for r in build_arch_table(group_runs(store.list())).rows]
    assert "20 (lr=0.2, schedule=constant, milestones=none)" in labels      # not 'milestones=,'
    assert "20 (lr=0.2, schedule=multistep, milestones=1)" in labels


def test_which_runs_take_this_layout(store):
    fake_run(store, [9.0], depth=20, shortcut="A", dataset="cifar10")
    fake_run(store, [8.0], depth=56, shortcut="A", dataset="cifar10")
    assert not fits(group_runs(store.list()))            # ResNets only: Table 6's layout
    fake_run(store, [9.0], depth=20, shortcut="B", arch="preact", dataset="cifar10")
    assert fits(group_runs(store.list()))
    lone = RunStore(store.root.parent / "lone")
    for lr in (0.1, 0.05):       # one architecture, a learning-rate sweep: the layout by what varied
        fake_run(lone, [9.0], depth=20, shortcut="B", arch="preact", lr=lr, dataset="cifar10")
    assert not fits(group_runs(lone.list()))
    g = group_runs(lone.list())[0]
    g.config = g.config.with_overrides(shortcut="none", width=64)      # (replace would keep the old stages)
    assert column_title(g) == "PreAct w64 plain"


def test_report_writes_the_arch_table(tmp_path, capsys):
    archs(RunStore(tmp_path / "runs"))
    out = tmp_path / "rep"
    assert main(["report", "--all", "--out", str(out), "--format", "md,csv", "--runs-dir", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["archs.csv", "archs.md", "report.md"]
    md = (out / "report.md").read_text()
    assert "## Test error by depth and architecture" in md
    assert "| 164 | - | - | - | 5.00 (6.00 ± 1.00, n=3) | 5.46 | - | - | - |" in md


def test_a_sweep_over_one_follow_up_net_names_it(store):
    """A learning-rate sweep of WRN-28-10 said 'Shared: ResNet-28 B, width 160' under its table."""
    from core.results import sweep

    for lr in (0.1, 0.05):
        fake_run(store, [9.0], depth=28, shortcut="B", width=160, arch="wrn", dropout=0.3, lr=lr, dataset="cifar10")
    text = sweep.build(group_runs(store.list())).caption
    assert "Shared: WRN-28-10 B dropout 0.3, sgd," in text and "ResNet" not in text and "width" not in text
    other = RunStore(store.root.parent / "other")
    for depth in (164, 1001):
        for lr in (0.1, 0.05):
            fake_run(other, [9.0], depth=depth, shortcut="B", width=16, arch="preact-bottleneck", lr=lr,
                     dataset="cifar10")
    assert "Shared: arch preact-bottleneck, B, width 16," in sweep.build(group_runs(other.list())).caption
