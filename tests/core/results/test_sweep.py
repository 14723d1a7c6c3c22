"""Results laid out by what a sweep varied (core/results/sweep.py), groups that know their data and their repeats,
and the sweep figure, on run folders with known numbers (checked by hand in the comments)."""
from __future__ import annotations

import io
import warnings

import pytest

from core.results.figures import fig_sweep
from core.results.groups import group_runs, pick_x
from core.results.report import write_report
from core.results.sweep import build, dimensions, to_csv, to_markdown
from core.store.runs import RunStore
from tests.core.results_helpers import fake_run

CIFAR_500 = {"dataset": "cifar10", "train_images": 500, "test_images": 200, "val_images": 0, "fingerprint": "aa"}
CIFAR_5000 = {"dataset": "cifar10", "train_images": 5000, "test_images": 200, "val_images": 0, "fingerprint": "bb"}


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def lr_by_batch(store: RunStore) -> RunStore:
    """lr 0.05/0.1 x batch 64/128 x seeds 1, 2 with these final errors:
    lr 0.05 b64: 7.0, 8.0 | lr 0.05 b128: 7.5, 9.0 | lr 0.1 b64: 6.0, 7.0 | lr 0.1 b128: 6.5, 6.5"""
    finals = {(0.05, 64): (7.0, 8.0), (0.05, 128): (7.5, 9.0), (0.1, 64): (6.0, 7.0), (0.1, 128): (6.5, 6.5)}
    for (lr, batch), errs in finals.items():
        for seed, err in zip((1, 2), errs):
            fake_run(store, [20.0, err], seed=seed, lr=lr, batch_size=batch, sweep_name="lrb", data=CIFAR_500)
    return store


def test_table_rows_and_columns_are_the_varied_settings_with_hand_computed_effects(store):
    table = build(group_runs(lr_by_batch(store).list()))
    assert [d.keys for d in table.dims] == [("lr",), ("batch_size",)]
    assert table.columns == ["batch 64", "batch 128"]
    assert [label for label, _ in table.rows] == ["lr 0.05", "lr 0.1"]
    # cells: best (mean ± sample std, n): lr 0.05 b128 = 7.5 (8.25 ± 1.06); 1.5 / sqrt(2) = 1.0607
    assert [[g.cell() for g in cells] for _, cells in table.rows] == [
        ["7.00 (7.50 ± 0.71, n=2)", "7.50 (8.25 ± 1.06, n=2)"], ["6.00 (6.50 ± 0.71, n=2)", "6.50 (6.50 ± 0.00, n=2)"]]
    # the effect of lr per batch: per-seed differences (0.05 minus 0.1) b64: 1.0, 1.0; b128: 1.0, 2.5
    # -> mean 1.75, sample std 1.5 / sqrt(2) = 1.06; of batch per lr: lr 0.05: -0.5, -1.5 -> -1.0 ± 0.71;
    # lr 0.1: -0.5, +0.5 -> 0.00 ± 0.71
    assert table.effects == [
        "with batch 64: lr 0.05 vs 0.1: 7.50 vs 6.50, difference +1.00 ± 0.00 over 2 seeds"
        " (95% interval +1.00 to +1.00: two seeds cannot show a difference)",
        "with batch 128: lr 0.05 vs 0.1: 8.25 vs 6.50, difference +1.75 ± 1.06 over 2 seeds"
        " (95% interval -7.78 to +11.28: two seeds cannot show a difference)",
        "with lr 0.05: batch 64 vs 128: 7.50 vs 8.25, difference -0.75 ± 0.35 over 2 seeds"
        " (95% interval -3.93 to +2.43: two seeds cannot show a difference)",
        "with lr 0.1: batch 64 vs 128: 6.50 vs 6.50, difference +0.00 ± 0.71 over 2 seeds"
        " (95% interval -6.35 to +6.35: two seeds cannot show a difference)"]
    md = to_markdown(table)
    assert "| lr | batch 64 | batch 128 |" in md
    assert "CIFAR-10, 500 training images, 200 test images" in md       # the caption says what the data was
    rows = to_csv(table).splitlines()
    assert rows[0] == "lr,batch_size,n,runs,best,mean,std,partial,seeds"
    assert rows[2] == "0.05,128,2,2,7.5000,8.2500,1.0607,0,1 2"


def test_paired_variants_are_one_dimension_and_milestones_read_as_decay_timing(store):
    for opt, lr, errs in (("sgd", 0.1, (7.0, 7.4)), ("adam", 0.001, (8.0, 8.6))):
        for seed, err in zip((1, 2), errs):
            fake_run(store, [err], seed=seed, optimizer=opt, lr=lr)
    table = build(group_runs(store.list()))
    assert [d.keys for d in table.dims] == [("optimizer", "lr")]
    assert [label for label, _ in table.rows] == ["adam, lr 0.001", "sgd, lr 0.1"]
    # adam minus sgd per seed: 1.0, 1.2 -> 1.10 ± 0.14
    assert table.effects == ["adam, lr 0.001 vs sgd, lr 0.1: 8.30 vs 7.20, difference +1.10 ± 0.14 over 2 seeds"
        " (95% interval -0.17 to +2.37: two seeds cannot show a difference)"]

    other = RunStore(store.root.parent / "decay")
    for ms, err in (((2,), 7.12), ((4,), 7.40)):
        fake_run(other, [err], seed=1, total_epochs=6, schedule="multistep", milestones=ms, milestone_unit="epoch")
    table = build(group_runs(other.list()))
    # one of six epochs done: partial numbers, and the effect line says so
    assert table.effects == ["lr /10 at epoch 2 vs 4: 7.12 vs 7.40 (partial †), difference -0.28 over 1 seed "
                             "(no spread)"]
    assert "† partial: 2 runs of this table have not finished every epoch" in to_markdown(table)


def test_groups_never_pool_different_data_and_repeats_are_not_seeds(store):
    fake_run(store, [7.0], seed=1, data=CIFAR_500)
    fake_run(store, [9.0], seed=2, data=CIFAR_5000)      # the same settings on other data: its own group
    fake_run(store, [8.0], seed=1, data=CIFAR_500)       # seed 1 again: a repeat, not a second seed
    groups = group_runs(store.list())
    assert sorted((g.data["train_images"], g.n, g.n_runs) for g in groups) == [(500, 1, 2), (5000, 1, 1)]
    small = next(g for g in groups if g.data["train_images"] == 500)
    assert small.std is None and small.finals == [7.5]                # the repeats' mean, never a std over them
    assert small.cell() == "7.50 (n=1; 2 runs, 1 seed)"
    table = build(groups)
    assert [d.keys for d in dimensions(groups)] == [("data",)]
    assert [label for label, _ in table.rows] == ["CIFAR-10, 5,000 training images, 200 test images",
                                                  "CIFAR-10, 500 training images, 200 test images"]


def test_runs_without_a_recorded_identity_split_by_data_folder(store, tmp_path):
    fake_run(store, [7.0], seed=1, dataset="cifar10", data_dir=str(tmp_path / "a"))
    fake_run(store, [9.0], seed=2, dataset="cifar10", data_dir=str(tmp_path / "b"))
    assert len(group_runs(store.list())) == 2


def test_x_axis_in_epochs_by_default_when_batch_sizes_differ(store):
    lr_by_batch(store)
    groups = group_runs(store.list())
    assert pick_x(groups) == "epoch" and pick_x(groups, "time") == "time"
    assert pick_x([g for g in groups if g.config.batch_size == 64]) == "epoch"    # lengths in epochs
    other = RunStore(store.root.parent / "iters")
    fake_run(other, [9.0], iterations=10)
    assert pick_x(group_runs(other.list())) == "iter"                              # the paper's: in iterations
    _, test = groups[0].curves("epoch")
    assert test.xs == [1.0, 2.0]                                      # epoch ends at steps 10 and 20, 10 per epoch
    _, test = groups[0].curves("time")
    assert test.xs == [1.0, 2.0]                                      # each epoch took 1.0 s


def test_sweep_figure_with_24_runs_keeps_its_layout_and_names_only_what_varies(store):
    for width in (4, 8, 12, 16, 20, 24):
        for lr in (0.05, 0.1):
            for seed in (1, 2):
                fake_run(store, [30.0, 8.0 + lr], seed=seed, width=width, lr=lr)
    groups = group_runs(store.list())
    assert len(groups) == 12 and sum(len(g.runs) for g in groups) == 24
    labels = [f"width {g.config.width}, lr {g.config.lr:g}" for g in groups]
    fig = fig_sweep(groups, labels, "epoch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                # "axes sizes collapsed to zero" fails here
        fig.savefig(io.BytesIO(), format="png")
    top, bottom = fig.axes
    assert top.get_position().width > 0.4 and top.get_position().height > 0.3
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [f"{lab} (n=2)" for lab in labels]
    assert bottom.get_ylabel() == "learning rate" and bottom.get_xlabel() == "epochs"


def test_report_of_a_sweep_and_of_unrelated_sweeps(store, tmp_path):
    lr_by_batch(store)
    report = write_report(store.list(), tmp_path / "rep", layer_responses=False, formats=["md", "csv", "png"])
    # batch varies: what a batch costs in time is drawn too (cost.png, issue 28)
    assert sorted(p.name for p in report.files) == ["cost.png", "curves.png", "report.md", "table.csv", "table.md"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Sweep lrb" in md and "![" in md
    assert ("difference +1.75 ± 1.06 over 2 seeds (95% interval -7.78 to +11.28: two seeds cannot show a "
            "difference)") in md
    for seed in (1, 2):      # a paper grid of another sweep, beside it: each keeps its own layout
        for depth in (20, 32):
            fake_run(store, [9.0 - depth / 20], depth=depth, seed=seed, sweep_name="fig6")
    report = write_report(store.list(), tmp_path / "all", named=False, layer_responses=False, formats=["md", "png"])
    names = sorted(p.name for p in report.files)
    assert names == ["fig6-cost.png", "fig6-fig6.png", "fig6-table6.md", "lrb-cost.png", "lrb-curves.png",
                     "lrb-table.md", "report.md"]


def test_table6_caption_says_what_the_data_was(store):
    """report.md captioned runs on a 500-image subset "on CIFAR-10", as if the full set."""
    from core.results.table6 import build_table

    for depth in (20, 32):
        fake_run(store, [9.0], depth=depth, seed=1, data=CIFAR_500)
    table = build_table(group_runs(store.list()))
    assert "on CIFAR-10, 500 training images, 200 test images:" in table.caption()


def test_a_subset_sweep_says_all_training_images_for_zero(store):
    # max_train_images=0 means the whole training set: the table read 'training images 0'
    for n, err in ((0, 6.0), (500, 9.0)):
        fake_run(store, [20.0, err], seed=1, dataset="cifar10", max_train_images=n, sweep_name="sub")
    table = build(group_runs(store.list()))
    assert [d.keys for d in table.dims] == [("max_train_images",)]
    labels = [label for label, _ in table.rows]
    assert labels == ["all training images", "training images 500"], labels
    assert "training images 0" not in to_markdown(table)
