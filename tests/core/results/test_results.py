"""Seed groups, the Table 6 layout (Markdown, LaTeX, CSV) and the Fig. 6/7 figures, on run folders with known
numbers."""
from __future__ import annotations

import csv
import io
import math
import struct

import pytest

from core.results.figures import ResponseCurve, fig6, fig7, save
from core.results.groups import band, group_runs, select_runs
from core.results.table6 import build_table, to_csv, to_latex, to_markdown
from core.store.runs import RunStore
from core.util.errors import ReportError
from tests.core.results_helpers import fake_run


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def grid(store: RunStore) -> RunStore:
    """CIFAR-10 ResNet-20 A x seeds 1-3 (7.0, 8.0, 9.5), plain-20 x seeds 1-2 (10.0, 11.0; seed 2 stopped after 1
    of 2 epochs), ResNet-56 A x seed 1 (6.5, on all training images)."""
    for seed, err in ((1, 7.0), (2, 8.0), (3, 9.5)):
        fake_run(store, [20.0, err], depth=20, shortcut="A", seed=seed, dataset="cifar10")
    fake_run(store, [30.0, 10.0], depth=20, shortcut="none", seed=1, dataset="cifar10")
    fake_run(store, [11.0], depth=20, shortcut="none", seed=2, state="stopped", total_epochs=2, dataset="cifar10")
    fake_run(store, [25.0, 6.5], depth=56, shortcut="A", seed=1, dataset="cifar10", max_train_images=0)
    return store


def test_groups_hold_runs_that_differ_only_in_seed(store):
    groups = group_runs(grid(store).list())
    # the ResNet-56 run has other data settings: a group of its own even apart from depth
    assert [(g.name, g.n, g.seeds) for g in groups] == [("plain-20", 2, [1, 2]), ("ResNet-20", 3, [1, 2, 3]),
                                                         ("ResNet-56", 1, [1])]
    r20 = groups[1]
    # by hand: mean = 24.5 / 3; deviations -7/6, -1/6, 4/3; squares sum 19/6; sample variance 19/12
    assert r20.best == 7.0
    assert r20.mean == pytest.approx(8.1666667, abs=1e-6)
    assert r20.std == pytest.approx(1.2583057, abs=1e-6)
    assert r20.cell() == "7.00 (8.17 ± 1.26, n=3)"
    assert r20.partial == 0
    plain = groups[0]
    assert (plain.best, plain.mean, plain.std) == (10.0, 10.5, pytest.approx(math.sqrt(0.5)))
    assert plain.partial == 1                  # seed 2 stopped after 1 of its 2 epochs
    assert groups[2].std is None and groups[2].cell() == "6.50 (n=1)"


def test_group_curves_are_mean_and_min_max_over_seeds(store):
    grid(store)
    r20 = group_runs(store.list())[1]
    train, test = r20.curves()
    # training error of seed s at step x is 90 - x - s: mean 88 - x, band [87 - x, 89 - x]
    assert train.xs == [5, 10, 15, 20] and train.n == 3
    assert train.mean == pytest.approx([83, 78, 73, 68]) and train.lo == [82, 77, 72, 67]
    assert train.hi == [84, 79, 74, 69]
    assert test.xs == [10, 20] and test.mean == pytest.approx([20.0, 24.5 / 3])
    assert (test.lo, test.hi) == ([20.0, 7.0], [20.0, 9.5])
    # past the end of a shorter (partial) run, the others go on alone
    b = band([([0, 10, 20], [1, 2, 3]), ([0, 5, 10], [3, 3, 3])])
    assert b.xs == [0, 5, 10, 20] and b.mean == [2.0, 2.25, 2.5, 3.0]
    assert b.lo == [1, 1.5, 2, 3] and b.hi == [3, 3, 3, 3]


def test_table6_cells_in_markdown_latex_and_csv(store):
    grid(store)
    table = build_table(group_runs(store.list()))
    assert table.kinds == ["none", "A"] and table.references
    md = to_markdown(table)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines() if line.startswith("|")]
    assert rows[0] == ["depth", "plain", "ResNet A", "He et al. 2016", "lab report"]
    body = {r[0]: r[1:] for r in rows[2:]}
    # the ResNet-56 group differs in max_train_images: its row says so
    # 2 epochs of 10 iterations: far shorter than the paper's 64,000, so every cell is marked ‡ (issue 34, item 7)
    assert body["20 (max_train_images=256)"] == ["10.00 (10.50 ± 0.71, n=2)†‡", "7.00 (8.17 ± 1.26, n=3)‡", "8.75",
                                                 "6.89"]
    assert body["56 (max_train_images=0)"] == ["-", "6.50 (n=1)‡", "6.97", "6.69"]
    assert "† partial: 1 run of this table has not finished" in md
    assert "Trained 20 iterations (2 epochs) at batch 32." in md and "64,000 iterations at batch 128" in md
    assert "‡ trained for less than half of the paper's 64,000 iterations: not comparable with its numbers" in md

    tex = to_latex(table)
    assert tex.count(r"\toprule") == tex.count(r"\midrule") == tex.count(r"\bottomrule") == 1
    lines = tex.splitlines()
    body_tex = lines[lines.index(r"\midrule") + 1: lines.index(r"\bottomrule")]
    cells = [line.removesuffix(r" \\").split(" & ") for line in body_tex]
    assert cells[0] == [r"20 (max\_train\_images=256)",
                        r"10.00 (10.50 $\pm$ 0.71, n=2)\textsuperscript{\dag}\textsuperscript{\ddag}",
                        r"7.00 (8.17 $\pm$ 1.26, n=3)\textsuperscript{\ddag}", "8.75", "6.89"]
    assert r"\begin{tabular}{lrrrr}" in tex

    rows_csv = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert len(rows_csv) == 2
    r = rows_csv[0]
    assert (r["depth"], r["A_n"], r["A_best"], r["A_seeds"], r["paper"]) == ("20", "3", "7.0000", "1 2 3", "8.7500")
    assert float(r["A_mean"]) == pytest.approx(8.1667, abs=1e-4) and float(r["A_std"]) == pytest.approx(1.2583,
                                                                                                           abs=1e-4)
    assert (r["plain_n"], r["plain_partial"], rows_csv[1]["plain_n"], rows_csv[1]["A_std"]) == ("2", "1", "", "")


def test_table_without_references_for_other_datasets(store):
    fake_run(store, [50.0], dataset="synthetic", shortcut="B", depth=8)
    table = build_table(group_runs(store.list()))
    assert table.header() == ["depth", "ResNet B"] and not table.references


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_fig6_panels_lines_and_files(store, tmp_path):
    grid(store)
    groups = group_runs(store.list())
    fig = fig6(groups)
    plain_ax, res_ax = fig.axes
    assert (plain_ax.get_title(), res_ax.get_title()) == ("plain networks", "ResNets (option A)")
    # two lines per group: training (thin, dashed) and test (bold); bands for groups of several seeds
    assert len(plain_ax.lines) == 2 and len(res_ax.lines) == 4
    train, test = plain_ax.lines
    assert train.get_linestyle() == "--" and test.get_linestyle() == "-"
    assert test.get_linewidth() > 2 * train.get_linewidth()
    assert len(plain_ax.collections) == 2 and len(res_ax.collections) == 2      # ResNet-56 has one seed: no band
    assert [t.get_text() for t in res_ax.get_legend().get_texts()] == ["ResNet-20 (max_train_images=256), n=3",
                                                                      "ResNet-56 (max_train_images=0)"]
    # one colour per depth: the two ResNet groups differ, a group's two lines share one
    assert res_ax.lines[0].get_color() == res_ax.lines[1].get_color() != res_ax.lines[2].get_color()
    paths = save(fig, tmp_path, "fig6", ["png", "svg", "pdf"])
    assert [p.name for p in paths] == ["fig6.png", "fig6.svg", "fig6.pdf"]
    w, h = _png_size(paths[0])
    assert 1200 < w < 1800 and 500 < h < 750              # 10.4 x 4 inches at 150 dpi, trimmed to the drawing
    assert paths[1].read_text().lstrip().startswith("<?xml") and paths[2].read_bytes()[:5] == b"%PDF-"


def test_fig7_by_index_and_sorted():
    curves = [ResponseCurve("plain-8", "none", 8, [1.0, 3.0, 2.0]),
              ResponseCurve("ResNet-8", "A", 8, [0.5, 0.2, 0.9], 2)]
    fig = fig7(curves)
    top, bottom = fig.axes
    assert len(top.lines) == len(bottom.lines) == 2
    assert list(top.lines[0].get_ydata()) == [1.0, 3.0, 2.0] and list(bottom.lines[0].get_ydata()) == [3.0, 2.0, 1.0]
    assert list(bottom.lines[1].get_ydata()) == [0.9, 0.5, 0.2]
    assert top.lines[0].get_linestyle() == "--" and top.lines[1].get_linestyle() == "-"
    assert top.lines[1].get_label() == "ResNet-8, mean of 2"


def test_selection_refuses_bad_input(store):
    with pytest.raises(ReportError, match="no runs"):
        select_runs([], named=True)
    a = fake_run(store, [9.0], dataset="synthetic")
    b = fake_run(store, [9.0], dataset="cifar10", max_train_images=0)
    usable, notes = select_runs(store.list(), named=True)     # two data sets: each gets its section (report.py)
    assert sorted(i.config.dataset for i in usable) == ["cifar10", "synthetic"] and notes == []
    empty = store.create(a.read_config())
    infos = {i.id: i for i in store.list()}
    with pytest.raises(ReportError, match=f"run {empty.id} has no finished epoch"):
        select_runs([infos[a.id], infos[empty.id]], named=True)
    usable, notes = select_runs([infos[a.id], infos[empty.id]], named=False)   # --all: left out with a note
    assert [i.id for i in usable] == [a.id] and notes == [f"left out {empty.id}: it has no finished epoch yet (queued)"]
    with pytest.raises(ReportError, match="no run has a finished epoch"):
        select_runs([infos[empty.id]], named=False)
    assert b.id in infos
