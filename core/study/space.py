"""A study's search space: ``--space FIELD=RANGE`` or ``--space FIELD=A,B,C``, one Optuna distribution each.

* ``lr=log:1e-4:1e-1``: a number range drawn on a log scale; ``dropout=0:0.5``: linear; ``momentum=0.8:0.99:0.01``
  with a step. A whole-number setting (``depth``, ``batch_size``, ``width`` ...) gets whole numbers: ``width=8:32:8``.
* ``optimizer=sgd,adam``, ``depth=20,56``, ``milestones=51,75|90,120``: choices, read as ``--sweep`` reads values
  (core/spec/grid.py ``parse_values``), so any setting a sweep takes can be a dimension.

Settings that set the budget or the data the objective is measured on (epochs, the validation split ...) are not
dimensions: every trial has the same full budget, and ASHA stops the weak ones at rungs.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from core.spec.config import RunConfig
from core.spec.grid import NOT_SWEPT, SWEPT, parse_values, value_text

# the budget and the data the objective is measured on: one value for every trial of a study
FIXED = ("epochs", "iterations", "val_split", "max_train_images", "max_test_images", "dataset", "download",
         "log_every", "tensorboard", "deterministic", "compile", "precision", "micro_batches", "on_oom", "sync_bn")
_TYPES = {name: f.type for name, f in RunConfig.__dataclass_fields__.items()}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class Dimension:
    """One setting searched: a number range (``low``..``high``, ``log``, ``step``) or ``choices``."""

    field: str
    text: str                                  # as given: "lr=log:1e-4:1e-1"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple = ()

    @property
    def is_int(self) -> bool:
        return _TYPES[self.field] == "int"

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.choices:
            return CategoricalDistribution([_plain(c) for c in self.choices])
        if self.is_int:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def value(self, param: Any) -> Any:
        """The setting's value for an Optuna parameter of this dimension."""
        if self.choices:
            return next((c for c in self.choices if _plain(c) == param), param)
        return int(param) if self.is_int else float(param)

    def extremes(self) -> list:
        """The values to check against RunConfig's rules: both ends of a range, or every choice."""
        return list(self.choices) if self.choices else [self.value(self.low), self.value(self.high)]


def _plain(value: Any) -> Any:
    """What Optuna stores for a choice: the value itself, or its text for a list (milestones)."""
    return value_text(value) if isinstance(value, (list, tuple)) else value


def parse_dimension(text: str) -> Dimension:
    """'lr=log:1e-4:1e-1' -> a Dimension. Raises ValueError saying what is allowed."""
    field, sep, rest = str(text).partition("=")
    field, rest = field.strip().replace("-", "_"), rest.strip()
    if not sep or not field or not rest:
        raise ValueError(f"expected FIELD=log:LOW:HIGH, FIELD=LOW:HIGH or FIELD=A,B,C (e.g. lr=log:1e-4:1e-1, "
                         f"optimizer=sgd,adam), got {text!r}")
    if field not in _TYPES:
        raise ValueError(f"unknown setting {field!r}; allowed: {', '.join(s for s in SWEPT if s not in FIXED)}")
    if field in FIXED or field in NOT_SWEPT:
        raise ValueError(f"{field} is one value for every trial of a study (give it as --{field.replace('_', '-')}); "
                         f"search the settings that change what a net learns")
    m = re.fullmatch(rf"(?:(log):)?({_NUMBER}):({_NUMBER})(?::({_NUMBER}))?", rest)
    if m is None:
        if ":" in rest:
            raise ValueError(f"a range is LOW:HIGH, log:LOW:HIGH or LOW:HIGH:STEP with numbers, got {rest!r}")
        choices = tuple(parse_values(field, rest))
        return Dimension(field, f"{field}={rest}", choices=choices)
    if _TYPES[field] not in ("int", "float"):
        raise ValueError(f"{field} is not a number: give choices such as {field}=A,B, not a range")
    log, low, high, step = bool(m.group(1)), float(m.group(2)), float(m.group(3)), m.group(4)
    step = float(step) if step is not None else None
    if not low < high:
        raise ValueError(f"a range runs from low to high, got {low:g}:{high:g}")
    if log and low <= 0:
        raise ValueError(f"a log range needs a low end above 0, got {low:g}")
    if log and step is not None:
        raise ValueError("a log range takes no step")
    if step is not None and not step > 0:
        raise ValueError(f"a step must be above 0, got {step:g}")
    if _TYPES[field] == "int" and not all(v is None or float(v).is_integer() for v in (low, high, step)):
        raise ValueError(f"{field} takes whole numbers: its range ends and step are whole, got {rest!r}")
    if not all(math.isfinite(v) for v in (low, high)):
        raise ValueError(f"a range's ends are finite numbers, got {rest!r}")
    return Dimension(field, f"{field}={rest}", low, high, log, step)


def parse_space(texts: list[str]) -> list[Dimension]:
    """Every --space; raises ValueError('--space FIELD: why') for the first bad one or a setting given twice."""
    out: list[Dimension] = []
    for text in texts:
        try:
            dim = parse_dimension(text)
        except ValueError as exc:
            raise ValueError(f"--space {str(text).partition('=')[0].strip()}: {exc}") from None
        if any(d.field == dim.field for d in out):
            raise ValueError(f"--space {dim.field}: searched twice")
        out.append(dim)
    if not out:
        raise ValueError("--space: give at least one, e.g. --space lr=log:1e-4:1e-1 --space optimizer=sgd,adam")
    return out


def check_against(base: RunConfig, dims: list[Dimension]) -> None:
    """Each dimension's extreme values on the study's fixed settings, as RunConfig judges them. Raises ValueError
    naming the --space at fault (lr=0:1 includes an lr of 0)."""
    for dim in dims:
        for value in dim.extremes():
            try:
                problem = base.with_overrides(**{dim.field: value}).validate().get(dim.field)
            except ValueError as exc:     # ConfigError
                problem = str(exc)
            if problem:
                raise ValueError(f"--space {dim.field}: {value_text(value)} is outside what it allows: {problem}")


def settings(dims: list[Dimension], params: dict[str, Any]) -> dict[str, Any]:
    """A trial's settings from its Optuna parameters."""
    return {d.field: d.value(params[d.field]) for d in dims if d.field in params}
