"""Grids of runs: several depths x shortcuts x seeds from one set of settings (the paper's Fig. 6 in one go).

The form's depth/shortcut/seed fields and the CLI's ``queue add --depths 20,56,110 --shortcuts A,none --seeds 1-5``
both come here. Lists are written ``20,56,110`` (commas or spaces), ranges ``1-5`` (both ends included) and may be
mixed (``1-3,7``); shortcuts are ``A``, ``B`` or ``none`` (``plain`` is accepted for ``none``). Every error is
reported per field, in RunConfig's own words, so a form can mark each bad field and a CLI can name each bad flag.
"""
from __future__ import annotations

import itertools
import re
from typing import Any, Iterable, Mapping

from core.spec.config import SHORTCUTS, ConfigError, RunConfig

GRID_FIELDS = ("depth", "shortcut", "seed")     # the fields that may take several values
MAX_RUNS = 1000                                 # a typo such as 1-100000 must not create a folder per seed


def parse_ints(text: Any, field: str = "value", example: str = "20,56,110") -> list[int]:
    """'20, 56 110' -> [20, 56, 110]; '1-5' -> [1, 2, 3, 4, 5]; '1-3,7' -> [1, 2, 3, 7]; duplicates dropped.

    Raises ValueError with a message that names the field and shows the accepted forms."""
    if isinstance(text, int) and not isinstance(text, bool):
        return [text]
    if isinstance(text, (list, tuple)):
        return list(dict.fromkeys(v for part in text for v in parse_ints(part, field, example)))
    parts = [p for p in re.split(r"[,\s]+", str(text).strip()) if p]
    if not parts:
        raise ValueError(f"enter one or more {field}s, e.g. {example} or a range such as 1-5")
    out: list[int] = []
    for part in parts:
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"{field}s are whole numbers or ranges separated by commas, e.g. {example} or 1-5; "
                             f"got {str(text).strip()!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError(f"range {part!r} runs backwards; write it low-high, e.g. {hi}-{lo}")
        if hi - lo >= MAX_RUNS:
            raise ValueError(f"range {part!r} has more than {MAX_RUNS} values")
        out.extend(range(lo, hi + 1))
    return list(dict.fromkeys(out))


def parse_shortcuts(value: Any) -> list[str]:
    """'A,none' or ['A', 'none'] -> ['A', 'none'] ('plain' means none); raises ValueError naming what is allowed."""
    parts = value if isinstance(value, (list, tuple)) else re.split(r"[,\s]+", str(value or "").strip())
    out = []
    for part in (str(p).strip() for p in parts):
        if not part:
            continue
        name = {"a": "A", "b": "B", "none": "none", "plain": "none"}.get(part.lower())
        if name is None:
            raise ValueError(f"unknown shortcut {part!r}; allowed: {', '.join(SHORTCUTS)} (or plain for none)")
        out.append(name)
    if not out:
        raise ValueError("choose at least one shortcut (A, B or none = plain net)")
    return list(dict.fromkeys(out))


def expand(base: RunConfig, depths: Iterable[int] | None = None, shortcuts: Iterable[str] | None = None,
           seeds: Iterable[int] | None = None) -> list[RunConfig]:
    """One validated RunConfig per combination (depth-major, then shortcut, then seed), in that order.

    A dimension left as None keeps the base's value. With several runs and a base ``name``, each run's name gets
    a suffix (``fig6-20A``, ``fig6-56plain-s3``) so the run ids stay readable and distinct. Raises ConfigError
    mapping each bad field to its first message (a bad depth is reported once, not once per run)."""
    depths = list(depths) if depths is not None else [base.depth]
    shortcuts = list(shortcuts) if shortcuts is not None else [base.shortcut]
    seeds = list(seeds) if seeds is not None else [base.seed]
    combos = list(itertools.product(depths, shortcuts, seeds))
    if len(combos) > MAX_RUNS:
        raise ConfigError({"depth": f"this grid has {len(combos)} runs; at most {MAX_RUNS} at once"})
    errors: dict[str, str] = {}
    configs = []
    name = base.name.strip()
    for depth, shortcut, seed in combos:
        values = {"depth": depth, "shortcut": shortcut, "seed": seed}
        if len(combos) > 1 and name:
            sc = {"none": "plain"}.get(shortcut, shortcut)
            suffix = (f"-{depth}{sc}" if len(depths) > 1 or len(shortcuts) > 1 else "")
            suffix += f"-s{seed}" if len(seeds) > 1 else ""
            values["name"] = name + suffix
        cfg = base.with_overrides(**values)
        for k, m in cfg.validate().items():
            errors.setdefault(k, m)
        configs.append(cfg)
    if errors:
        raise ConfigError(errors)
    return configs


def grid_configs(raw: Mapping[str, Any]) -> tuple[list[RunConfig], dict[str, str]]:
    """The runs a form describes and every field's first error (no configs while any field is wrong).

    ``raw`` maps RunConfig fields to what the user entered: text or values; ``depth`` and ``seed`` may be lists or
    ranges, ``shortcut`` a list of ticked shortcuts or 'A,none'. Each other field is checked on its own, so every
    bad field is reported at once."""
    errors: dict[str, str] = {}
    dims: dict[str, list] = {}
    parsers = {"depth": lambda v: parse_ints(v, "depth", "20,56,110"),
               "seed": lambda v: parse_ints(v, "seed", "1,2,3"), "shortcut": parse_shortcuts}
    for key, parse in parsers.items():
        if key in raw:
            try:
                dims[key] = parse(raw[key])
            except ValueError as exc:
                errors[key] = str(exc)
    base: dict[str, Any] = {}
    for key, value in raw.items():
        if key in GRID_FIELDS:
            continue
        try:
            RunConfig.from_dict({key: value})
            base[key] = value
        except ConfigError as exc:
            errors.update(exc.errors)
    try:
        cfg = RunConfig.from_dict(base)
        configs = expand(cfg, dims.get("depth"), dims.get("shortcut"), dims.get("seed"))
    except ConfigError as exc:
        for k, m in exc.errors.items():
            errors.setdefault(k, m)
        configs = []
    return (configs if not errors else []), errors
