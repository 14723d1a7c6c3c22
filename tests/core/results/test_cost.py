"""Error against cost (issue 28): a sweep whose nets differ in width, depth, batch or arch gets a figure of final test
error against training time and parameters (one point per group, seed spread, Pareto front), and its table gains
time and parameter columns."""
from __future__ import annotations

import csv
import io

import pytest

from core.results import cost
from core.results.groups import group_runs
from core.results.report import write_report
from core.spec.config import RunConfig
from core.store.runs import RunStore
from core.train.models import count_parameters, model_for
from tests.core.results_helpers import fake_run

WIDTHS = ((4, 8, 16), (8, 12, 16), (16, 32, 64))


@pytest.mark.parametrize("points,front", [
    ([(1, 10), (2, 8), (3, 9), (4, 5)], [0, 1, 3]),          # 3 costs more than 2 and errs more: off the front
    ([(1, 10), (1, 9), (2, 9)], [1]),                       # equal cost: the better one; equal error: the cheaper
    ([(5, 1), (1, 10)], [1, 0]),                            # ordered by cost
    ([], []),
])
def test_the_pareto_front_keeps_what_no_other_point_beats_on_both(points, front):
    assert cost.pareto(points) == front


def width_sweep(store: RunStore) -> None:
    for i, widths in enumerate(WIDTHS):
        for seed in (1, 2):
            run = fake_run(store, [30.0 - 5 * i + seed], seed=seed, widths=widths, width=widths[0],
                           sweep_name="widths")
            run.update_status(elapsed_s=10.0 * (i + 1) + seed)       # wider: slower


def test_report_of_a_width_sweep_draws_error_against_cost_and_tables_its_cost(tmp_path):
    store = RunStore(tmp_path / "runs")
    width_sweep(store)
    groups = group_runs(store.list())
    counts = {g.config.widths: count_parameters(model_for(g.config)) for g in groups}
    assert [cost.parameters(g) for g in groups] == [counts[g.config.widths] for g in groups]   # the meta count
    report = write_report(store.list(), tmp_path / "rep", layer_responses=False, formats=["md", "csv", "png"])
    names = sorted(p.name for p in report.files)
    assert "cost.png" in names and "curves.png" in names
    md = (tmp_path / "rep" / "table.md").read_text()
    assert "| group | parameters | time per run | final test error (%) |" in md
    assert f"| widths 8/12/16 | {counts[(8, 12, 16)]:,} | 22s | 26.50 (26.00-27.00, n=2) |" in md, md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "rep" / "table.csv").read_text())))
    assert [(r["widths"], int(r["parameters"]), float(r["seconds_per_run"])) for r in rows] == \
        [(",".join(map(str, w)), counts[w], 10.0 * (i + 1) + 1.5) for i, w in enumerate(WIDTHS)]
    assert "![Final test error against training time and parameters](cost.png)" in \
        (tmp_path / "rep" / "report.md").read_text()


def test_the_cost_figure_has_a_point_per_group_with_its_spread_and_the_front():
    points = [cost.Cost("a", 1000, 10.0, 30.0, 29.0, 31.0, 2), cost.Cost("b", 5000, 20.0, 25.0, 24.0, 26.0, 2),
              cost.Cost("c", 9000, 15.0, 27.0, 27.0, 27.0, 1)]
    fig = cost.fig_cost(points)
    left, right = fig.axes[:2]
    assert left.get_xlabel().startswith("training time") and right.get_xlabel().startswith("parameters")
    fronts = [line for line in right.get_lines() if line.get_label() == "Pareto front"]
    assert len(fronts) == 1 and list(fronts[0].get_xdata()) == [1000, 5000]      # c: more parameters, worse than b
    fronts = [line for line in left.get_lines() if line.get_label() == "Pareto front"]
    assert list(fronts[0].get_xdata()) == [10.0, 15.0, 20.0]                     # in time all three are on it
    assert len(left.containers) == 3                                             # a point + whiskers per group


def test_only_a_sweep_of_what_costs_gets_the_figure(tmp_path):
    assert cost.varies_cost(["widths", "seed"]) and cost.varies_cost(["batch_size"]) and cost.varies_cost(["arch"])
    assert not cost.varies_cost(["lr", "milestones"])
    store = RunStore(tmp_path / "runs")
    for lr in (0.1, 0.05):
        fake_run(store, [20.0], lr=lr, sweep_name="lrs")
    report = write_report(store.list(), tmp_path / "rep", layer_responses=False, formats=["md", "png"])
    assert "cost.png" not in [p.name for p in report.files]
    assert "parameters" not in (tmp_path / "rep" / "table.md").read_text()
    assert RunConfig().widths == (16, 32, 64)


def test_the_lab_reports_numbers_stand_beside_runs_of_its_preset(tmp_path):
    """A depth grid of the lab-report preset (30/60/90, stem 64, B) keeps Table 6's layout with the report's own
    errors (6.89, 6.69) beside the runs, and the caption-free row names the net by its stages."""
    from core.spec.presets import preset

    store = RunStore(tmp_path / "runs")
    lab = {k: v for k, v in preset("lab-report").to_dict().items()
           if k in ("widths", "width", "stem_width", "init", "normalize", "batch_size")}
    for depth in (20, 56):
        for seed in (1, 2):
            fake_run(store, [7.0 + seed / 10], depth=depth, shortcut="B", seed=seed, dataset="cifar10",
                     sweep_name="lab", **lab)
    write_report(store.list(), tmp_path / "rep", layer_responses=False, formats=["md", "csv"])
    md = (tmp_path / "rep" / "table6.md").read_text()
    assert "lab report" in md.splitlines()[0].lower(), md
    assert "| 6.89 |" in md and "| 6.69 |" in md
