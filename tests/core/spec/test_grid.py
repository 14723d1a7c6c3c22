"""Grids of runs (core.spec.grid): list and range parsing, expansion into one RunConfig per combination, field
errors."""
from __future__ import annotations

import pytest

from core.spec.config import ConfigError, RunConfig
from core.spec.grid import expand, grid_configs, parse_ints, parse_shortcuts


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
