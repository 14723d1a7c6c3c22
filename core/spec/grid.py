"""Grids and sweeps: several values of any setting, paired variants, and the product of them as runs.

The form's fields and the CLI's flags both come here:

* ``--sweep FIELD=V1,V2`` (``parse_sweep``): several values of one setting, ``lr=0.1,0.05``, ``batch_size=64,128``;
  whole-number settings take ranges too (``seed=1-5``, ``depth=20,56,110``); milestones take alternatives
  separated by ``|`` (``milestones=51,75|90,120``), and so do stage widths (``widths=16,32,64|30,60,90``);
  shortcuts are ``A``, ``B`` or ``none`` (``plain`` = none).
  The form reads each field the same way (``20,56`` in depth, ``0.1,0.05`` in lr, ``2,4|4,5`` in milestones).
* ``--variant "optimizer=sgd lr=0.1"`` (``parse_variant``): settings that only make sense together; each variant
  is one value of a paired dimension.
* ``expand``: one validated RunConfig per combination of the swept settings (in the order given, the last varying
  fastest) times the variants, each carrying the sweep's name (``sweep_name``: given, or ``sweep_name_for``).
  The CLI's ``--depths/--shortcuts/--seeds`` lists are sweeps of depth, shortcut and seed.

Every error is reported per field, in RunConfig's own words, so a form can mark each bad field and a CLI can name
each bad flag.
"""
from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from core.spec.config import SHORTCUTS, ConfigError, RunConfig

GRID_FIELDS = ("depth", "shortcut", "seed")     # the paper's grid (Table 6 / Fig. 6 in one go)
# names and folders: one value per launch (a study sets study, trial and rungs)
NOT_SWEPT = ("name", "sweep_name", "data_dir", "device", "study", "trial", "rungs")
SWEPT = tuple(f.name for f in fields(RunConfig) if f.name not in NOT_SWEPT)
MAX_RUNS = 1000                                 # a typo such as 1-100000 must not create a folder per seed
_TYPES = {f.name: f.type for f in fields(RunConfig)}
# short names in run names and generated sweep names (lr0.1, bs64, w16, ms2_4)
SHORT = {"batch_size": "bs", "width": "w", "milestones": "ms", "weight_decay": "wd", "momentum": "mom",
         "max_train_images": "ntrain", "seed": "s", "epochs": "ep", "iterations": "it", "warmup_iters": "warm",
         "widths": "w", "stem_width": "stem"}


def no_empty_value(text: str) -> None:
    """'0.1,,0.2' or '0.1,' lost a value to a typo (it made 2 runs of 3): ValueError, never a silent skip."""
    if text.strip() and re.search(r"(^|,)\s*(,|$)", text.strip()):
        raise ValueError(f"an empty value in {text.strip()!r}; separate values by one comma, e.g. 0.1,0.2")


def parse_ints(text: Any, field: str = "value", example: str = "20,56,110") -> list[int]:
    """'20, 56 110' -> [20, 56, 110]; '1-5' -> [1, 2, 3, 4, 5]; '1-3,7' -> [1, 2, 3, 7]; duplicates dropped.

    Raises ValueError with a message that names the field and shows the accepted forms."""
    if isinstance(text, int) and not isinstance(text, bool):
        return [text]
    if isinstance(text, (list, tuple)):
        return list(dict.fromkeys(v for part in text for v in parse_ints(part, field, example)))
    no_empty_value(str(text))
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
    if not isinstance(value, (list, tuple)):
        no_empty_value(str(value or ""))
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


def _one(field: str, value: Any) -> Any:
    """One value of ``field`` in its type; ValueError with RunConfig's own message."""
    try:
        return getattr(RunConfig.from_dict({field: value}), field)
    except ConfigError as exc:
        raise ValueError(exc.errors.get(field, str(exc))) from None


def parse_values(field: str, value: Any) -> list:
    """Several values of one setting: '0.1,0.05' for lr, '64,128' or '8-20' for whole numbers, '51,75|90,120' for
    milestones and '16,32,64|30,60,90' for widths (alternatives separated by '|'), 'A,none' for shortcuts, 'on,off'
    for switches. A single value is a one-item list. Raises ValueError naming what is allowed."""
    if field not in _TYPES:
        raise ValueError(f"unknown setting {field!r}; allowed: {', '.join(SWEPT)}")
    if field in NOT_SWEPT:
        raise ValueError(f"{field} takes one value per launch; it cannot be swept")
    if field == "shortcut":
        return parse_shortcuts(value)
    if field in ("depth", "seed"):
        return parse_ints(value, field, {"depth": "20,56,110", "seed": "1,2,3"}[field])
    if field in ("milestones", "widths"):
        alts = value if isinstance(value, list) and value and isinstance(value[0], (list, tuple)) else \
            [a for a in (str(value).split("|") if isinstance(value, str) else [value])]
        # an empty widths is "w, 2w, 4w of width" (not of the default width): kept empty for the config to derive
        out = [() if field == "widths" and not str(a).strip(" ,()[]") else _one(field, _stripped(a)) for a in alts]
        return list(dict.fromkeys(out))
    if isinstance(value, (list, tuple)):
        parts = list(value)
    elif isinstance(value, str):
        no_empty_value(value)
        parts = [p for p in re.split(r"[,\s]+", value.strip()) if p] or [value]
    else:
        parts = [value]
    out = []
    for part in parts:
        m = re.fullmatch(r"(\d+)-(\d+)", part) if _TYPES[field] == "int" and isinstance(part, str) else None
        out += parse_ints(part, field) if m else [_one(field, part)]
    if len(out) > MAX_RUNS:
        raise ValueError(f"more than {MAX_RUNS} values")
    return list(dict.fromkeys(out))


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def parse_sweep(text: str) -> tuple[str, list]:
    """'lr=0.1,0.05' -> ('lr', [0.1, 0.05]). Raises ValueError naming the setting and what is allowed."""
    field, sep, values = str(text).partition("=")
    field = field.strip().replace("-", "_")
    if not sep or not field or not values.strip():
        raise ValueError(f"expected FIELD=V1,V2 such as lr=0.1,0.05 or milestones=51,75|90,120, got {text!r}")
    return field, parse_values(field, values)


def parse_variant(text: str) -> dict[str, Any]:
    """'optimizer=adam lr=0.001' -> {'optimizer': 'adam', 'lr': 0.001}: settings applied together (one value each).
    Raises ValueError naming the setting at fault."""
    out: dict[str, Any] = {}
    for item in str(text).split():
        field, sep, value = item.partition("=")
        field = field.strip().replace("-", "_")
        if not sep or not field or not value:
            raise ValueError(f"expected FIELD=VALUE pairs separated by spaces, such as \"optimizer=adam lr=0.001\", "
                             f"got {item!r}")
        values = parse_values(field, value)
        if len(values) != 1:
            raise ValueError(f"{field}: a variant sets one value; sweep several with --sweep {field}=...")
        if field in out:
            raise ValueError(f"{field} is set twice in one variant")
        out[field] = values[0]
    if not out:
        raise ValueError("a variant sets at least one setting, such as \"optimizer=adam lr=0.001\"")
    return out


def value_text(value: Any) -> str:
    """A setting's value as written in flags and labels: 0.1, 64, 51,75 (milestones), on/off."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)


def varied_fields(configs: Sequence[RunConfig]) -> list[str]:
    """The settings that differ between these runs (seed included, name not), in RunConfig's order."""
    dicts = [c.to_dict() for c in configs]
    return [k for k in (dicts[0] if dicts else {}) if k != "name" and any(d[k] != dicts[0][k] for d in dicts[1:])]


def describe(cfg: RunConfig, keys: Sequence[str]) -> str:
    """'lr=0.1 batch_size=64 seed=1': what sets this run apart in its sweep (``keys`` from varied_fields)."""
    return " ".join(f"{k}={value_text(getattr(cfg, k))}" for k in keys if k != "sweep_name")


def sweep_name_for(dims: Mapping[str, Sequence], variants: Sequence[Mapping[str, Any]], when: float | None = None,
                   ) -> str:
    """A name for a launch that was given none: what it varies and when, e.g. 'lr-batch_size-1202-1530'."""
    varied = [k for k, v in dims.items() if len(v) > 1 and k != "seed"]
    varied += [k for v in variants for k in v] if len(variants) > 1 else []
    varied = list(dict.fromkeys(varied))
    head = "-".join(SHORT.get(k, k) for k in varied[:3]) or "seeds"
    return f"{head}-{time.strftime('%m%d-%H%M%S', time.localtime(when))}"


def _suffix(values: Mapping[str, Any], dims: Mapping[str, Sequence], variants: Sequence[Mapping]) -> str:
    """What tells a run of the grid apart, for its name: '-20A-s3' as before for the paper's grid, '-lr0.1-bs64'."""
    out = ""
    if len(dims.get("depth", ())) > 1 or len(dims.get("shortcut", ())) > 1:
        out += f"-{values['depth']}{ {'none': 'plain'}.get(values['shortcut'], values['shortcut'])}"
    for key, vals in dims.items():
        if key not in GRID_FIELDS and len(vals) > 1:
            out += f"-{SHORT.get(key, key)}{value_text(values[key])}"
    if len(variants) > 1:
        out += "-" + "-".join(value_text(values[k]) for k in variants[values["_variant"]])
    if len(dims.get("seed", ())) > 1:
        out += f"-s{values['seed']}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", out)


def expand(base: RunConfig, depths: Iterable[int] | None = None, shortcuts: Iterable[str] | None = None,
           seeds: Iterable[int] | None = None, *, sweeps: Mapping[str, Sequence] | None = None,
           variants: Sequence[Mapping[str, Any]] = (), sweep_name: str | None = None) -> list[RunConfig]:
    """One validated RunConfig per combination of ``sweeps`` (field -> values, the first varying slowest; depths,
    shortcuts and seeds are sweeps of those fields) times ``variants``.

    A dimension not given keeps the base's value. With several runs and a base ``name``, each run's name gets a
    suffix (``fig6-20A``, ``fig6-56plain-s3``, ``lab-lr0.1-s1``) so the run ids stay readable and distinct. With
    several runs each carries ``sweep_name`` (generated when None). Raises ConfigError mapping each bad field to its
    first message (a bad depth is reported once, not once per run)."""
    dims: dict[str, list] = {}
    for key, vals in (("depth", depths), ("shortcut", shortcuts), *dict(sweeps or {}).items(), ("seed", seeds)):
        if vals is not None:
            dims[key] = list(vals)
    variants = [dict(v) for v in variants] or [{}]
    clash = sorted({k for v in variants for k in v} & {k for k, vals in dims.items()})
    if clash:
        raise ConfigError({clash[0]: f"{clash[0]} is both swept and set by a variant; give it in one of them"})
    order = [k for k in ("depth", "shortcut") if k in dims] + [k for k in dims if k not in GRID_FIELDS]
    order += ["_variant"] + (["seed"] if "seed" in dims else [])     # seeds vary fastest, as in the paper's grid
    axes = {**dims, "_variant": range(len(variants))}
    combos = [dict(zip(order, c)) for c in itertools.product(*(axes[k] for k in order))]
    if len(combos) > MAX_RUNS:
        raise ConfigError({next(iter(dims), "seed"): f"this grid has {len(combos)} runs; at most {MAX_RUNS} at once"})
    if len(combos) > 1 and sweep_name is None and not base.sweep_name:
        sweep_name = sweep_name_for(dims, variants if len(variants) > 1 else [])
    errors: dict[str, str] = {}
    configs = []
    name = base.name.strip()
    for combo in combos:
        values: dict[str, Any] = {k: v for k, v in combo.items() if k != "_variant"}
        values.update(variants[combo["_variant"]])
        if sweep_name:
            values["sweep_name"] = sweep_name
        if len(combos) > 1 and name:
            full = {"depth": base.depth, "shortcut": base.shortcut, "seed": base.seed, **values, **combo}
            values["name"] = name + _suffix(full, dims, variants)
        try:
            cfg = base.with_overrides(**values)
        except ConfigError as exc:
            for k, m in exc.errors.items():
                errors.setdefault(k, m)
            continue
        for k, m in cfg.validate().items():
            errors.setdefault(k, m)
        configs.append(cfg)
    if errors:
        raise ConfigError(errors)
    return configs


def grid_configs(raw: Mapping[str, Any], variants: Sequence[Mapping[str, Any]] = ()
                 ) -> tuple[list[RunConfig], dict[str, str]]:
    """The runs a form describes and every field's first error (no configs while any field is wrong).

    ``raw`` maps RunConfig fields to what the user entered: text or values. Every field of ``SWEPT`` may hold
    several values (``parse_values``: '20,56', '0.1,0.05', '51,75 | 90,120', ``shortcut`` a list of ticked
    shortcuts); ``variants`` are paired settings. Each field is checked on its own, so every bad field is reported
    at once."""
    errors: dict[str, str] = {}
    dims: dict[str, list] = {}
    base: dict[str, Any] = {}
    for key, value in raw.items():
        if key in SWEPT and not isinstance(value, bool):
            try:
                vals = parse_values(key, value)
            except ValueError as exc:
                errors[key] = str(exc)
                continue
            if len(vals) > 1 or key in GRID_FIELDS:
                dims[key] = vals
            else:
                base[key] = vals[0]
            continue
        try:
            RunConfig.from_dict({key: value})
            base[key] = value
        except ConfigError as exc:
            errors.update(exc.errors)
    try:
        cfg = RunConfig.from_dict(base)
        configs = expand(cfg, sweeps=dims, variants=variants, sweep_name=cfg.sweep_name or None)
    except ConfigError as exc:
        for k, m in exc.errors.items():
            errors.setdefault(k, m)
        configs = []
    return (configs if not errors else []), errors
