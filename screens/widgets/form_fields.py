"""The new-run form's fields: one widget per setting, and the values the form starts with.

Each RunConfig field is one widget in a three-column grid (name, field, help or error): an Input for numbers and
text, a Choice for a few fixed options, a TickBox for on/off, three TickBoxes for the shortcuts. About 130 widgets
in all where Select drop-downs and a row container per field made 320: the form opens in a fraction of the time.

Starting values: a clone's config (less its sweep name and run name); else the settings remembered from the last
launch or cancel (core/store/settings.py, in the user's config folder) on top of the he2016 preset, less one launch's
own (core.spec.field_help.PER_LAUNCH: name, sweep name, seed); the app's --data-dir wins over a remembered folder.
A remembered preset whose recipe the remembered settings no longer match opens as custom.
"""
from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from textual.containers import Horizontal
from textual.widget import Widget

from core.data.plan import planned_steps, scale_milestones
from core.spec import config as C
from core.spec.config import ConfigError, RunConfig
from core.spec.field_help import FIELD_HELP, PER_LAUNCH, RECIPE
from core.spec.grid import grid_configs, parse_values
from core.spec.presets import PRESETS, preset

from .choice import Choice
from .ordered_input import OrderedInput
from .tickbox import TickBox

CHOICES: dict[str, tuple[str, ...]] = {
    "arch": C.ARCHS, "dataset": C.DATASETS, "normalize": C.NORMALIZATIONS, "optimizer": C.OPTIMIZERS,
    "schedule": C.SCHEDULES,
    "milestone_unit": C.MILESTONE_UNITS, "error_warmup": C.TRISTATE, "precision": C.PRECISIONS,
    "channels_last": C.TRISTATE, "on_oom": C.OOM_POLICIES, "compile": C.COMPILE_MODES, "init": C.INITS,
}
BOOLS = {f.name for f in fields(RunConfig) if f.type == "bool"}
PLACEHOLDERS = {"depth": "e.g. 20 or 20,56,110", "data_dir": "$RESLAB_DATA or data/", "name": "generated",
                "milestones": "e.g. 32000,48000", "seed": "e.g. 0 or 1-5", "widths": "e.g. 30,60,90 (empty: w,2w,4w)"}
CUSTOM = "custom"
REMEMBERED_TEXT = "Kept for next time: all but name, sweep_name, seed and variants"


def as_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def field_widget(name: str, value: Any) -> Widget:
    """The one widget that edits ``name`` (id ``f-<name>``), showing ``value``."""
    if name == "shortcut":
        chosen = value if isinstance(value, (list, tuple)) else [value]
        boxes = [TickBox(sc, value=sc in chosen, compact=True, id=f"f-shortcut-{sc}") for sc in C.SHORTCUTS]
        for box in boxes:
            box.tooltip = FIELD_HELP[name]
        return Horizontal(*boxes, classes="field", id="f-shortcut")
    if name in BOOLS:
        widget: Widget = TickBox("on", value=bool(value), compact=True, id=f"f-{name}", classes="field")
    elif name in CHOICES:
        widget = Choice([(c, c) for c in CHOICES[name]], str(value), id=f"f-{name}", classes="field")
    else:
        widget = OrderedInput(as_text(value), placeholder=PLACEHOLDERS.get(name, ""), compact=True, id=f"f-{name}",
                       classes="field")
    widget.tooltip = FIELD_HELP[name]
    return widget


def paired_width(edited: str, text: str) -> tuple[str, str | None]:
    """After an edit of ``width`` or ``widths``, the other field and the text that keeps the two agreeing (None:
    leave it): width 32 -> widths 32,64,128 (a sweep of widths 16,32 empties widths: each derives its own);
    widths 30,60,90 (or a sweep of them) -> width 30, its first."""
    numbers = [p for p in re.split(r"[^0-9]+", text) if p]
    if edited == "width":
        one = re.fullmatch(r"\s*(\d+)\s*", text)
        return "widths", (",".join(str(int(one.group(1)) * k) for k in (1, 2, 4)) if one else "")
    return "width", numbers[0] if numbers else None


def starting_values(initial: RunConfig | None, remembered: dict[str, Any], data_dir: str) -> tuple[dict, str, str]:
    """(field values, preset name, where) the form opens with; ``where`` "" means the form's default."""
    if initial is not None:
        values = {**initial.to_dict(), "name": "", "sweep_name": ""}
        values["shortcut"] = [initial.shortcut]
        return values, CUSTOM, ""
    chosen = remembered.get("preset")
    chosen = chosen if chosen in PRESETS or chosen == CUSTOM else "he2016"
    values = preset("he2016" if chosen == CUSTOM else chosen).to_dict()
    values["shortcut"] = [values["shortcut"]]
    saved = remembered.get("fields")
    for name, value in (saved.items() if isinstance(saved, dict) else ()):
        if name in values and name not in PER_LAUNCH and _fits(name, value):
            values[name] = value
    if chosen != CUSTOM and differs_from_preset(values, chosen):
        chosen = CUSTOM
    if data_dir:
        values["data_dir"] = data_dir
    where = remembered.get("where")
    return values, chosen, where if isinstance(where, str) else ""


def differs_from_preset(raw: dict[str, Any], name: str) -> bool:
    """Whether the form's values (``raw``: field -> text or value) leave preset ``name``'s recipe
    (core.spec.field_help.RECIPE); the depth is the user's within a recipe (the paper's grid: 20 to 110)."""
    recipe = preset(name)
    for key in RECIPE:
        current = raw.get(key)
        if key == "depth" or current is None:
            continue
        if key == "shortcut":
            current = current[0] if isinstance(current, list) and len(current) == 1 else current
        try:
            if getattr(RunConfig.from_dict({key: current}), key) != getattr(recipe, key):
                return True
        except ConfigError:
            return True
    return False


def _fits(name: str, value: Any) -> bool:
    """A remembered value this form can show (a file from another version may hold anything)."""
    if name == "shortcut":
        return isinstance(value, list) and all(v in C.SHORTCUTS for v in value)
    if name in BOOLS:
        return isinstance(value, bool)
    if name in CHOICES:
        return value in CHOICES[name]
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def automatic_milestones(raw: dict[str, Any], variants: list[dict], recipe: RunConfig,
                         scaled: tuple | None) -> tuple[tuple, str | None, bool] | None:
    """The CLI's rule for milestones in the form: a recipe shortened without new milestones has them scaled to the
    same fractions of the run (core.data.plan.scale_milestones), and given back at the recipe's length. Returns
    (milestones, the note or None, whether the field must change), or None where the milestones are the user's:
    typed (neither the recipe's nor the last ones scaled), swept, set in a variant, or when the runs' lengths are
    not known (another field is wrong, it says so) or differ (no one scaling fits them all)."""
    try:
        typed = parse_values("milestones", raw["milestones"])
    except ValueError:
        return None
    automatic = [recipe.milestones] + ([scaled] if scaled is not None else [])
    if (len(typed) != 1 or typed[0] not in automatic or raw["milestone_unit"] != recipe.milestone_unit
            or any("milestones" in v for v in variants)):
        return None
    runs, _ = grid_configs({**raw, "milestones": ""}, variants)   # the runs' lengths, whatever the milestones
    if not runs or len({planned_steps(c) for c in runs}) > 1:
        return None
    fitted, note = scale_milestones(runs[0].with_overrides(milestones=recipe.milestones,
                                                           milestone_unit=recipe.milestone_unit), recipe)
    return fitted.milestones, note, fitted.milestones != typed[0]
