"""Issue 34, item 7: figures ready for a write-up: distinct legend entries, legends off the curves, an integer layer
index, a y axis fitted to curves that all lie high."""
from __future__ import annotations

import pytest

from core.results.figures import ResponseCurve, distinct, fig6, fig7, save
from core.results.groups import group_runs
from core.store.runs import RunStore
from tests.core.results_helpers import fake_run


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def test_two_groups_with_one_label_get_distinct_legend_entries(store):
    """'WRN-10-2 B' twice for a 1- and a 2-epoch run."""
    fake_run(store, [80.0], depth=8, shortcut="B", max_train_images=256)
    fake_run(store, [75.0, 70.0], depth=8, shortcut="B", max_train_images=256, data={"dataset": "synthetic",
             "train_images": 256, "test_images": 100, "val_images": 0, "fingerprint": "x"})
    groups = group_runs(store.list())
    labels = [g.name for g in groups]
    assert len(set(labels)) == 1 and sorted(distinct(labels, groups)) == [f"{labels[0]} [1 epoch]",
                                                                          f"{labels[0]} [2 epochs]"]


def test_fig6_fits_a_high_y_axis_and_keeps_its_legend_off_the_curves(store, tmp_path):
    fake_run(store, [80.0, 70.0, 62.0], depth=8, shortcut="A")
    fake_run(store, [85.0, 75.0, 66.0], depth=8, shortcut="none")
    fig = fig6(group_runs(store.list()))
    low, high = fig.axes[0].get_ylim()
    assert low >= 30 and high <= 95, (low, high)          # every point lies between ~40 and ~90 %: not 0-100
    fig.draw_without_rendering()
    for ax in fig.axes:                                    # the legend is under the panel, outside the axes
        box, legend = ax.get_window_extent(), ax.get_legend().get_window_extent()
        assert legend.y1 <= box.y0, (legend, box)
    save(fig, tmp_path, "fig6", ["png"])


def test_fig7_has_whole_layer_indices_and_its_legend_beside_the_axes(tmp_path):
    curves = [ResponseCurve("plain-8", "none", 8, [1.0, 0.8, 0.6, 0.9, 0.7, 0.5]),
              ResponseCurve("ResNet-8", "A", 8, [0.5, 0.4, 0.3, 0.45, 0.35, 0.2])]
    fig = fig7(curves)
    fig.draw_without_rendering()
    top = fig.axes[0]
    assert all(float(t).is_integer() for t in top.get_xticks())
    legend, box = fig.legends[0].get_window_extent(), top.get_window_extent()
    assert legend.x0 >= box.x1 - 1, (legend, box)
    save(fig, tmp_path, "fig7", ["png"])


def test_the_lr_panel_shows_a_drop_inside_an_epoch_at_its_iteration(tmp_path):
    """The lr drops after iteration 12 of 8-iteration epochs while steps.jsonl has a point every 20 iterations (and at
    each epoch's end): the panel drew the drop at iteration 8, the last point before it."""
    from core.results.figures import fig_sweep
    from core.train.trainer import train_run
    from tests.conftest import tiny_config

    store = RunStore(tmp_path / "runs")
    run, state = train_run(store, tiny_config(epochs=2, schedule="multistep", milestones=(12,), milestone_unit="iter",
                                              log_every=20, channels_last="off"))
    assert state == "finished"
    fig = fig_sweep(group_runs(store.list()), ["lr 0.05"], "iter")
    line = fig.axes[1].lines[0]
    assert line.get_drawstyle() == "steps-pre"      # a point's lr is that of the iterations since the one before
    points = [(float(x), float(y)) for x, y in line.get_xydata()]

    def lr_at(step: float) -> float:
        return next(y for x, y in points if x >= step)

    assert [lr_at(s) for s in (1, 8, 9, 12)] == [0.05] * 4
    assert [lr_at(s) for s in (12.5, 13, 16)] == pytest.approx([0.005] * 3)
    fig.savefig(tmp_path / "lr.png", dpi=100)
