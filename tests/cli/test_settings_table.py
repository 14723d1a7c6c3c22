"""The command line's flags and the form's fields are made from one table (core/spec/field_help.py SETTINGS): each
setting's flag, its kind (on/off, choices, a value) and its help are the same in both."""
from __future__ import annotations

import argparse

from textual.app import App
from textual.widgets import Input

from cli.main import build_parser
from core.spec.config import RunConfig
from core.spec.field_help import FORM_FIELDS, SETTINGS
from screens.widgets.choice import Choice
from screens.widgets.form_fields import field_widget
from screens.widgets.tickbox import TickBox


def subparser(parser: argparse.ArgumentParser, *path: str) -> argparse.ArgumentParser:
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


def test_every_setting_of_train_queue_add_and_study_is_its_row_of_the_table():
    parser = build_parser()
    for path in (("train",), ("queue", "add"), ("study",)):
        options = subparser(parser, *path)._option_string_actions
        for name in FORM_FIELDS:
            setting, action = SETTINGS[name], options[SETTINGS[name].flag]
            assert action.dest == f"cfg_{name}", (path, name)
            assert action.help.startswith(setting.help.replace("%", "%%")), (path, name)
            assert action.help.endswith(f"[default: {setting.default_text}]"), (path, name)
            if setting.kind == "bool":
                assert isinstance(action, argparse.BooleanOptionalAction), name
            else:
                assert action.metavar == setting.value_name, name
            if setting.choices:
                assert action.metavar == "|".join(setting.choices), name


async def test_the_forms_field_for_each_setting_is_of_its_kind_with_its_choices():
    async with App().run_test() as pilot:         # widgets are made inside an app
        fields_of_their_kind()
        boxes = field_widget("shortcut", "A")
        await pilot.app.mount(boxes)
        assert tuple(str(box.id).removeprefix("f-shortcut-") for box in boxes.children) == SETTINGS["shortcut"].choices


def fields_of_their_kind() -> None:
    defaults = RunConfig()
    for name in FORM_FIELDS:
        if name == "shortcut":      # three tick boxes, one per choice
            continue
        setting, widget = SETTINGS[name], field_widget(name, getattr(defaults, name))
        assert widget.tooltip == setting.help, name
        if setting.kind == "bool":
            assert isinstance(widget, TickBox), name
        elif setting.kind == "choice":
            assert isinstance(widget, Choice) and tuple(widget.values) == setting.choices, name
        else:
            assert isinstance(widget, Input), name
