"""The new-run form's fields: one widget per setting (the values they hold and the form's rules are
screens/new_run_model.py).

Each RunConfig field is one widget in a three-column grid (name, field, help or error): an Input for numbers and
text, a Choice for a few fixed options, a TickBox for on/off, three TickBoxes for the shortcuts. About 130 widgets
in all where Select drop-downs and a row container per field made 320: the form opens in a fraction of the time.
"""
from __future__ import annotations

from typing import Any

from textual.containers import Horizontal
from textual.widget import Widget

from core.spec.field_help import CHOICES, FIELD_HELP

from ..new_run_model import BOOLS, as_text
from .choice import Choice
from .ordered_input import OrderedInput
from .tickbox import TickBox

PLACEHOLDERS = {"depth": "e.g. 20 or 20,56,110", "data_dir": "$RESLAB_DATA or data/", "name": "generated",
                "milestones": "e.g. 32000,48000", "seed": "e.g. 0 or 1-5", "widths": "e.g. 30,60,90 (empty: w,2w,4w)"}
REMEMBERED_TEXT = "Kept for next time: all but name, sweep_name, seed and variants"


def field_widget(name: str, value: Any) -> Widget:
    """The one widget that edits ``name`` (id ``f-<name>``), showing ``value``."""
    if name == "shortcut":
        chosen = value if isinstance(value, (list, tuple)) else [value]
        boxes = [TickBox(sc, value=sc in chosen, compact=True, id=f"f-shortcut-{sc}") for sc in CHOICES[name]]
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
