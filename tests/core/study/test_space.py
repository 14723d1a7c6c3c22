"""The study's space (--space) and ASHA's arithmetic."""
from __future__ import annotations

import pytest

from core.spec.config import RunConfig
from core.study.asha import rung_epochs, standing
from core.study.space import check_against, parse_dimension, parse_space, settings


def test_ranges_and_choices_become_optuna_distributions_and_back():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    lr, opt, width, ms = (parse_dimension(t) for t in
                          ("lr=log:1e-4:1e-1", "optimizer=sgd,adam", "width=8:32:8", "milestones=2,4|3,5"))
    assert lr.distribution() == FloatDistribution(1e-4, 1e-1, log=True)
    assert opt.distribution() == CategoricalDistribution(["sgd", "adam"])
    assert width.distribution() == IntDistribution(8, 32, step=8)
    assert ms.distribution() == CategoricalDistribution(["2,4", "3,5"])
    got = settings([lr, opt, width, ms], {"lr": 0.01, "optimizer": "adam", "width": 16, "milestones": "3,5"})
    assert got == {"lr": 0.01, "optimizer": "adam", "width": 16, "milestones": (3, 5)}
    assert RunConfig().with_overrides(**got).milestones == (3, 5)


@pytest.mark.parametrize("text,message", [
    ("lr", "expected FIELD=log:LOW:HIGH"),
    ("lr=log:0:1", "log range needs a low end above 0"),
    ("lr=0.1:0.01", "runs from low to high"),
    ("lr=1:2:x", "a range is LOW:HIGH"),
    ("optimizer=log:1:2", "optimizer is not a number"),
    ("depth=8.5:20", "whole numbers"),
    ("epochs=2:10", "one value for every trial"),
    ("val_split=100,200", "one value for every trial"),
    ("colour=red,blue", "unknown setting 'colour'"),
])
def test_a_bad_dimension_says_what_is_allowed(text, message):
    with pytest.raises(ValueError, match=message):
        parse_space([text])


def test_the_ends_of_each_dimension_are_judged_by_runconfig():
    base = RunConfig(val_split=100)
    with pytest.raises(ValueError, match="--space optimizer: rmsprop"):
        check_against(base, parse_space(["optimizer=sgd,rmsprop"]))
    with pytest.raises(ValueError, match="--space momentum: 1 is outside"):
        check_against(base, parse_space(["momentum=0.5:1"]))
    with pytest.raises(ValueError, match="searched twice"):
        parse_space(["lr=0.1,0.2", "lr=log:1e-3:1e-1"])
    check_against(base, parse_space(["lr=log:1e-4:1e-1", "optimizer=sgd,adam"]))


def test_asha_rungs_and_standing():
    assert rung_epochs(1, 3, 9) == (1, 3)
    assert rung_epochs(2, 3, 30) == (2, 6, 18)
    assert rung_epochs(5, 3, 5) == ()
    first = standing({0: 40.0}, 0, 3)
    assert (first.rank, first.members, first.top, first.promoted) == (1, 1, 0, False)    # alone: not yet the top
    third = standing({0: 40.0, 1: 50.0, 2: 30.0}, 2, 3)
    assert third.promoted and third.text(2, 6) == "rung 2 (epoch 6): 1st of 3 at this rung, val err 30.0%"
    assert not standing({0: 40.0, 1: 50.0, 2: 30.0}, 0, 3).promoted
    assert standing({0: 30.0, 1: 30.0}, 0, 2).promoted and not standing({0: 30.0, 1: 30.0}, 1, 2).promoted
