"""The type check of every run file's keys (core/store/reader.py ``problem``): its quick pass over the keys an
object has must accept and refuse exactly what the full check in the fields' order does, and name the same key."""
from __future__ import annotations

import pytest

from core.store.reader import EPOCH_FIELDS, STATUS_FIELDS, full_problem, problem

VALUES = [None, True, False, 0, 1, -1, 2 ** 1000, -(2 ** 1000), 2 ** 999, 1.5, float("nan"), "x", "", [], {}, [1]]


@pytest.mark.parametrize("fields,required", [(EPOCH_FIELDS, ("epoch",)), (STATUS_FIELDS, ("state",))])
def test_the_quick_check_agrees_with_the_full_one(fields, required):
    names = list(fields)
    base = {"epoch": 3, "step": 10, "test_err": 9.5, "lr": 0.1} if "epoch" in required else {"state": "finished"}
    for name in names:
        for value in VALUES:
            row = dict(base, **{name: value})
            assert problem(row, fields, required) == full_problem(row, fields, required), (name, value)
    # two wrong keys, in an order other than the fields': the message names the first of the fields' order
    last, first = names[-1], names[1]
    row = dict(base, **{last: (1,), first: (2,)})      # a tuple is no kind of value a run file holds
    assert problem(row, fields, required) == full_problem(row, fields, required)
    assert repr(first) in problem(row, fields, required)
    assert problem(dict(base, unknown_key=object()), fields, required) == ""     # a newer ResLab's key
