"""Grids of runs (core.spec.grid): list and range parsing, expansion into one RunConfig per combination, field
errors."""
from __future__ import annotations

import pytest

from core.spec.config import ConfigError, RunConfig
from core.spec.grid import expand, grid_configs, parse_ints, parse_shortcuts, parse_sweep, parse_variant


@pytest.mark.parametrize("text, expected", [
    ("20,56,110", [20, 56, 110]), ("20, 56 110", [20, 56, 110]), ("1-5", [1, 2, 3, 4, 5]),
    ("1,2,3", [1, 2, 3]), ("1-3,7,2", [1, 2, 3, 7]), ("4", [4]), (7, [7]), (["1-2", 5], [1, 2, 5]),
])
def test_parse_ints_lists_and_ranges(text, expected):
    assert parse_ints(text, "seed") == expected


@pytest.mark.parametrize("text, message", [
    ("", "enter one or more seeds"), ("1,x", "whole numbers or ranges"), ("5-1", "runs backwards"),
    ("-3", "whole numbers"), ("1-100000", "more than 1000"), ("1.5", "whole numbers"),
])
def test_parse_ints_rejects_with_a_message(text, message):
    with pytest.raises(ValueError, match=message):
        parse_ints(text, "seed")


def test_parse_shortcuts():
    assert parse_shortcuts("A,none") == ["A", "none"]
    assert parse_shortcuts(["B", "plain", "a"]) == ["B", "none", "A"]
    with pytest.raises(ValueError, match="unknown shortcut 'C'"):
        parse_shortcuts("A,C")
    with pytest.raises(ValueError, match="at least one"):
        parse_shortcuts([])


def test_expand_makes_one_run_per_combination_in_order_with_distinct_names():
    base = RunConfig(name="fig6", epochs=3, iterations=0, milestones=(), schedule="cosine", lr=0.05)
    cfgs = expand(base, [20, 56], ["A", "none"], [1, 2])
    assert [(c.depth, c.shortcut, c.seed) for c in cfgs] == [
        (20, "A", 1), (20, "A", 2), (20, "none", 1), (20, "none", 2),
        (56, "A", 1), (56, "A", 2), (56, "none", 1), (56, "none", 2)]
    assert cfgs[0].name == "fig6-20A-s1" and cfgs[-1].name == "fig6-56plain-s2"
    assert len({c.name for c in cfgs}) == 8
    assert all(c.epochs == 3 and c.lr == 0.05 and c.schedule == "cosine" for c in cfgs)
    only_seeds = expand(base, seeds=[3, 4])
    assert [(c.depth, c.seed, c.name) for c in only_seeds] == [(20, 3, "fig6-s3"), (20, 4, "fig6-s4")]
    assert expand(base) == [base]


def test_expand_reports_each_bad_field_once():
    with pytest.raises(ConfigError) as exc:
        expand(RunConfig(), depths=[20, 21, 23])
    assert list(exc.value.errors) == ["depth"] and "6n+2" in exc.value.errors["depth"]


def test_grid_configs_from_form_values():
    cfgs, errors = grid_configs({"depth": "20,56", "shortcut": ["A", "none"], "seed": "1-2", "lr": "0.05"})
    assert errors == {} and len(cfgs) == 8 and {c.lr for c in cfgs} == {0.05}
    cfgs, errors = grid_configs({"depth": "20,x", "shortcut": [], "seed": "2-1", "lr": "fast", "epochs": "0",
                                 "iterations": "0"})
    assert cfgs == []
    assert set(errors) == {"depth", "shortcut", "seed", "lr", "epochs"}
    assert "whole numbers" in errors["depth"] and "runs backwards" in errors["seed"]


# -- sweeps of any setting and paired variants (issue 18) --------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("lr=0.1,0.05", ("lr", [0.1, 0.05])), ("batch_size=64,128", ("batch_size", [64, 128])),
    ("width=16 64", ("width", [16, 64])), ("seed=1-3", ("seed", [1, 2, 3])), ("epochs=2-4", ("epochs", [2, 3, 4])),
    ("milestones=51,75|90,120", ("milestones", [(51, 75), (90, 120)])),
    ("milestones=2|4", ("milestones", [(2,), (4,)])),
    ("shortcut=A,plain", ("shortcut", ["A", "none"])), ("augment=on,off", ("augment", [True, False])),
    ("batch-size=64", ("batch_size", [64])), ("iterations=32k,64k", ("iterations", [32000, 64000])),
])
def test_parse_sweep_values_in_each_settings_type(text, expected):
    assert parse_sweep(text) == expected


@pytest.mark.parametrize("text, message", [
    ("lr=fast", "expected a number"), ("depth=20,x", "whole numbers"), ("foo=1,2", "unknown setting 'foo'"),
    ("name=a,b", "takes one value per launch"), ("lr", "expected FIELD=V1,V2"), ("milestones=2,x|4", "51,75"),
])
def test_parse_sweep_rejects_with_the_setting_named(text, message):
    with pytest.raises(ValueError, match=message):
        parse_sweep(text)


def test_variants_pair_settings_and_the_grid_is_their_product_with_the_sweeps():
    assert parse_variant("optimizer=adam lr=0.001") == {"optimizer": "adam", "lr": 0.001}
    for bad, message in (("optimizer=adam lr", "FIELD=VALUE"), ("lr=0.1,0.2", "one value"), ("", "at least one")):
        with pytest.raises(ValueError, match=message):
            parse_variant(bad)
    base = RunConfig(name="opt", epochs=6, iterations=0, milestones=(3, 5), milestone_unit="epoch")
    cfgs = expand(base, sweeps={"batch_size": [64, 128]}, seeds=[1, 2],
                  variants=[{"optimizer": "sgd", "lr": 0.1}, {"optimizer": "adam", "lr": 0.001}], sweep_name="cmp")
    assert [(c.batch_size, c.optimizer, c.lr, c.seed) for c in cfgs] == [
        (64, "sgd", 0.1, 1), (64, "sgd", 0.1, 2), (64, "adam", 0.001, 1), (64, "adam", 0.001, 2),
        (128, "sgd", 0.1, 1), (128, "sgd", 0.1, 2), (128, "adam", 0.001, 1), (128, "adam", 0.001, 2)]
    assert {c.sweep_name for c in cfgs} == {"cmp"} and len({c.name for c in cfgs}) == 8
    assert cfgs[2].name == "opt-bs64-adam-0.001-s1"
    with pytest.raises(ConfigError, match="both swept and set by a variant"):
        expand(base, sweeps={"lr": [0.1, 0.2]}, variants=[{"lr": 0.1}, {"lr": 0.01}])


def test_a_launch_of_several_runs_gets_a_generated_sweep_name_and_one_run_none():
    cfgs = expand(RunConfig(), sweeps={"lr": [0.1, 0.05]})
    assert len({c.sweep_name for c in cfgs}) == 1 and cfgs[0].sweep_name.startswith("lr-")
    assert expand(RunConfig(), sweeps={"lr": [0.1]})[0].sweep_name == ""
    assert RunConfig(sweep_name="bad name").validate()["sweep_name"].startswith("sweep name may use")


def test_form_fields_take_several_values_of_any_setting():
    cfgs, errors = grid_configs({"lr": "0.1, 0.05", "batch_size": "64,128", "epochs": "6", "iterations": "0",
                                 "milestones": "2 | 4", "milestone_unit": "epoch", "sweep_name": "form-sweep"})
    assert errors == {} and len(cfgs) == 8
    assert {(c.lr, c.batch_size, c.milestones) for c in cfgs} == {
        (lr, b, m) for lr in (0.1, 0.05) for b in (64, 128) for m in ((2,), (4,))}
    assert {c.sweep_name for c in cfgs} == {"form-sweep"}
    cfgs, errors = grid_configs({"lr": "0.1,x", "batch_size": "64,0"})
    assert cfgs == [] and "expected a number" in errors["lr"] and "batch size must be >= 1" in errors["batch_size"]
