"""`study confirm`'s runs and `report --study`: the figures, the caption, the top trials and the confirmed settings
(test error mean ± std over seeds, apart from the trials' validation errors)."""
from __future__ import annotations

from core.results.study_report import pareto_front, write_study_report
from core.store.runs import RunStore
from core.study.spec import load, storage_url
from core.study.summary import confirm_configs, summary
from core.train.trainer import train_run
from tests.core.study.helpers import make_study


def test_confirmed_settings_are_reported_apart_with_their_test_error(tmp_path):
    root = tmp_path / "runs"
    make_study(root)
    store = RunStore(root)
    study, spec = load("ui", storage_url(root, None))
    configs = confirm_configs(store, study, spec, top=1, seeds=[1, 2])
    best = min((t for t in study.trials if t.values), key=lambda t: t.values[0])
    assert [c.seed for c in configs] == [1, 2] and {c.trial for c in configs} == {-1}
    assert {c.rungs for c in configs} == {()} and configs[0].name == f"ui-c{best.number}-s1"
    assert configs[0].lr == best.params["lr"] and configs[0].epochs == spec.epochs
    errs = [train_run(store, cfg)[0].read_epochs()[-1]["test_err"] for cfg in configs]
    data = summary(store, study, spec, storage_url(root, None))
    assert data["epochs_trained"] == 4 and [t["state"] for t in data["trials"]] == ["complete", "complete", "running"]
    files = write_study_report(store, study, spec, data, tmp_path / "rep")
    assert {p.name for p in files} >= {"history.png", "intermediate.png", "slices.png", "parallel.png", "report.md"}
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "Study ui: 3 trials of ResNet-8" in text and "Epochs trained in all: 4 of the 6" in text
    assert "## Confirmed settings (chosen on validation, measured on test)" in text
    mean = sum(errs) / 2
    assert f"| {best.number} | {mean:.2f} ± " in text and "| 2 | lr=" in text


def test_pareto_front_keeps_what_nothing_beats_in_both():
    points = [(10.0, 5.0, 0), (12.0, 3.0, 1), (11.0, 6.0, 2), (9.0, 9.0, 3), (12.5, 3.5, 4)]
    assert [p[2] for p in pareto_front(points)] == [3, 0, 1]
