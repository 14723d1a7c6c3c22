"""The new-run form's fields: one widget per setting, and the values the form starts with.

Each RunConfig field is one widget in a three-column grid (name, field, help or error): an Input for numbers and
text, a Choice for a few fixed options, a TickBox for on/off, three TickBoxes for the shortcuts. About 130 widgets
in all where Select drop-downs and a row container per field made 320: the form opens in a fraction of the time.

Starting values: a clone's config; else the settings remembered from the last launch or cancel (core/store/settings.py,
in the user's config folder) on top of the he2016 preset; the app's --data-dir wins over a remembered folder.
"""
from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from textual.containers import Horizontal
from textual.widget import Widget

from core.spec import config as C
from core.spec.config import PRESETS, RunConfig
from core.spec.field_help import FIELD_HELP

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
NOT_REMEMBERED = ("name",)        # a run name is used once


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
        values = initial.to_dict()
        values["shortcut"] = [initial.shortcut]
        return values, CUSTOM, ""
    preset = remembered.get("preset")
    preset = preset if preset in PRESETS or preset == CUSTOM else "he2016"
    values = C.preset("he2016" if preset == CUSTOM else preset).to_dict()
    values["shortcut"] = [values["shortcut"]]
    saved = remembered.get("fields")
    for name, value in (saved.items() if isinstance(saved, dict) else ()):
        if name in values and name not in NOT_REMEMBERED and _fits(name, value):
            values[name] = value
    if data_dir:
        values["data_dir"] = data_dir
    where = remembered.get("where")
    return values, preset, where if isinstance(where, str) else ""


def _fits(name: str, value: Any) -> bool:
    """A remembered value this form can show (a file from another version may hold anything)."""
    if name == "shortcut":
        return isinstance(value, list) and all(v in C.SHORTCUTS for v in value)
    if name in BOOLS:
        return isinstance(value, bool)
    if name in CHOICES:
        return value in CHOICES[name]
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)
