"""New-run form: every RunConfig field, grouped as core.config.GROUPS, with its help and its validation error.

Depth and seed take several values ("20,56,110", "1-5") and several shortcuts can be ticked: the launch creates
that grid of runs (core.grid). Validation is RunConfig's own (from_dict + validate) for every run of the
grid; while anything is invalid the field says why and ctrl+s refuses to launch.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Select, Static

from core import config as C
from core.config import FIELD_HELP, GROUPS, PRESET_HELP, PRESETS, ConfigError, RunConfig
from core.devices import has_gpu
from core.grid import grid_configs

from .widgets.tickbox import TickBox

CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": C.DATASETS, "normalize": C.NORMALIZATIONS, "optimizer": C.OPTIMIZERS, "schedule": C.SCHEDULES,
    "milestone_unit": C.MILESTONE_UNITS, "error_warmup": C.TRISTATE, "precision": C.PRECISIONS,
    "channels_last": C.TRISTATE, "on_oom": C.OOM_POLICIES,
}
BOOLS = {f.name for f in fields(RunConfig) if f.type == "bool"}
WHERE = (("queue (background, all GPUs)", "queue"),
         ("this app (a background thread; stops when you quit)", "app"))
WHERE_HELP = ("queue: the scheduler of this runs folder trains the runs in their own processes, as many at once as "
              "there are device slots (every GPU), and keeps going after you quit or ssh drops (g shows the queue). "
              "this app: trains in a thread of this app, one run after another (quick CPU tries); quitting asks")
CUSTOM = "custom"


def as_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


class NewRunScreen(Screen):
    """Below 110 columns each field's help moves to a panel that follows the focus; errors always show inline."""

    CSS_PATH = "new_run.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, initial: RunConfig | None = None, preset_name: str | None = None):
        super().__init__()
        if initial is None:
            preset_name = preset_name or "he2016"
            initial = C.preset(preset_name)
        self.initial = initial
        self.preset_name = preset_name or CUSTOM
        self._programmatic: dict[str, Any] = {}  # widget id -> the value this screen put there (not the user)
        self.errors: dict[str, str] = {}
        self.configs: list[RunConfig] = []

    # -- layout --------------------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(Text.assemble(("New run", "bold"), "  fill in, then ctrl+s to launch; esc cancels"), id="title")
        with VerticalScroll(id="form"):
            with Horizontal(classes="row", id="row-preset"):
                yield Label("preset", classes="name")
                yield Select([(name, name) for name in PRESETS] + [("custom", CUSTOM)], value=self.preset_name,
                             allow_blank=False, compact=True, id="preset", classes="field")
                self._programmatic["preset"] = self.preset_name
                yield Static(PRESET_HELP.get(self.preset_name, "your own settings"), id="msg-preset", classes="msg")
            with Horizontal(classes="row", id="row-where"):
                yield Label("runs in", classes="name")
                yield Select([(label, key) for label, key in WHERE], value="queue" if has_gpu() else "app",
                             allow_blank=False, compact=True, id="where", classes="field wide")
            for group, names in GROUPS.items():
                yield Static(group, classes="group")
                for name in names:
                    with Horizontal(classes="row", id=f"row-{name}"):
                        yield Label(name, classes="name", id=f"label-{name}")
                        yield from self._field(name)
                        yield Static(FIELD_HELP[name], classes="msg help", id=f"msg-{name}")
        yield Static(id="focus-help")
        yield Static(id="summary")
        with Horizontal(id="buttons"):
            yield Button("Launch  ctrl+s", id="launch", variant="success", compact=True)
            yield Button("Cancel  esc", id="cancel", compact=True)
        yield Footer(compact=True)

    def _field(self, name: str):
        value = getattr(self.initial, name)
        tip = FIELD_HELP[name]
        if name == "shortcut":
            with Horizontal(classes="field", id="f-shortcut"):
                for sc in C.SHORTCUTS:
                    box = TickBox(sc, value=sc == value, compact=True, id=f"f-shortcut-{sc}")
                    self._programmatic[box.id] = box.value
                    box.tooltip = tip
                    yield box
        elif name in BOOLS:
            box = TickBox("on", value=bool(value), compact=True, id=f"f-{name}", classes="field")
            self._programmatic[box.id] = box.value
            box.tooltip = tip
            yield box
        elif name in CHOICES:
            sel = Select([(c, c) for c in CHOICES[name]], value=value, allow_blank=False, compact=True,
                         id=f"f-{name}", classes="field")
            self._programmatic[sel.id] = value
            sel.tooltip = tip
            yield sel
        else:
            placeholder = {"depth": "e.g. 20 or 20,56,110", "data_dir": "$RESLAB_DATA or data/",
                           "name": "generated", "milestones": "e.g. 32000,48000"}.get(name, "")
            box = Input(as_text(value), placeholder=placeholder, compact=True, id=f"f-{name}", classes="field")
            self._programmatic[box.id] = box.value
            box.tooltip = tip
            yield box

    def on_mount(self) -> None:
        if not self.initial.data_dir and self.app.data_dir:
            self.set_value("data_dir", self.app.data_dir)
        self.revalidate()
        self.query_one("#f-depth", Input).focus()

    # -- values ------------------------------------------------------------------------------------------------------
    def raw_values(self) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for f in fields(RunConfig):
            name = f.name
            if name == "shortcut":
                raw[name] = [sc for sc in C.SHORTCUTS if self.query_one(f"#f-shortcut-{sc}", Checkbox).value]
            elif name in BOOLS:
                raw[name] = self.query_one(f"#f-{name}", Checkbox).value
            elif name in CHOICES:
                raw[name] = self.query_one(f"#f-{name}", Select).value
            else:
                raw[name] = self.query_one(f"#f-{name}", Input).value
        return raw

    def set_value(self, name: str, value: Any) -> None:
        """Put a value in a field as the program (a preset, a clone), not as a user edit."""
        if name == "shortcut":
            for sc in C.SHORTCUTS:
                self._put(f"f-shortcut-{sc}", sc == value)
        elif name in BOOLS:
            self._put(f"f-{name}", bool(value))
        elif name in CHOICES:
            self._put(f"f-{name}", value)
        else:
            self._put(f"f-{name}", as_text(value))

    def _put(self, widget_id: str, value: Any) -> None:
        self._programmatic[widget_id] = value
        self.query_one(f"#{widget_id}").value = value

    def _by_user(self, widget_id: str | None, value: Any) -> bool:
        """A change event that is not the echo of a value this screen set."""
        if widget_id is None or self._programmatic.get(widget_id, object()) == value:
            return False
        self._programmatic.pop(widget_id, None)
        return True

    def apply_preset(self, name: str) -> None:
        """Fill the fields a preset defines; data, device and run settings stay as the user set them."""
        for key, value in PRESETS[name].items():
            self.set_value(key, value)
        self.query_one("#msg-preset", Static).update(PRESET_HELP[name])

    # -- validation --------------------------------------------------------------------------------------------------
    def revalidate(self) -> None:
        self.configs, self.errors = grid_configs(self.raw_values())
        for f in fields(RunConfig):
            name = f.name
            msg = self.query_one(f"#msg-{name}", Static)
            row = self.query_one(f"#row-{name}")
            if name in self.errors:
                msg.update(Text("✗ " + self.errors[name], style="bold red"))
                row.add_class("invalid")
                msg.remove_class("help")
            else:
                msg.update(Text(FIELD_HELP[name]))
                row.remove_class("invalid")
                msg.add_class("help")
        summary = self.query_one("#summary", Static)
        if self.errors:
            summary.update(Text(f"✗ {len(self.errors)} field(s) to fix before launching: "
                                + ", ".join(self.errors), style="bold red"))
        else:
            labels = ", ".join(c.label() for c in self.configs[:6]) + (" ..." if len(self.configs) > 6 else "")
            if self.query_one("#where", Select).value == "queue":
                summary.update(Text(f"✓ queues {len(self.configs)} run(s) for the scheduler: {labels}", style="green"))
            else:
                summary.update(Text(f"✓ launches {len(self.configs)} run(s), one after another: {labels}"
                                    if len(self.configs) > 1 else f"✓ launches {labels}", style="green"))
        self.query_one("#launch", Button).disabled = bool(self.errors)

    def on_input_changed(self, event: Input.Changed) -> None:
        by_user = self._by_user(event.input.id, event.value)
        if by_user and event.input.id == "f-epochs":
            iters = self.query_one("#f-iterations", Input)
            if iters.value.strip() not in ("0", ""):
                self._put("f-iterations", "0")
                self.notify("iterations set to 0, so that epochs sets the length", timeout=4)
        self._after_change(by_user)

    def on_select_changed(self, event: Select.Changed) -> None:
        by_user = self._by_user(event.select.id, event.value)
        if event.select.id == "preset":
            if by_user and event.value != CUSTOM:
                self.apply_preset(str(event.value))
            self.query_one("#msg-preset", Static).update(PRESET_HELP.get(str(event.value), "your own settings"))
            return
        if event.select.id == "where":
            self.revalidate()
            return
        self._after_change(by_user)

    def on_descendant_focus(self, event) -> None:
        """Show the focused field's help (the inline help is hidden on narrow terminals)."""
        widget_id = str(event.widget.id or "")
        name = widget_id.removeprefix("f-").split("-shortcut")[0]
        name = "shortcut" if widget_id.startswith("f-shortcut") else name
        help_text = FIELD_HELP.get(name) or {"preset": "a preset fills the settings it defines; edit any field after",
                                             "where": WHERE_HELP}.get(widget_id, "")
        self.query_one("#focus-help", Static).update(Text.assemble((f"{name if name in FIELD_HELP else widget_id}: ",
                                                                    "bold"), help_text) if help_text else "")

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._after_change(self._by_user(event.checkbox.id, event.value))

    def _after_change(self, by_user: bool) -> None:
        if by_user:
            preset = self.query_one("#preset", Select)
            if preset.value != CUSTOM and self._differs_from_preset(str(preset.value)):
                self._put("preset", CUSTOM)
        self.revalidate()

    def _differs_from_preset(self, name: str) -> bool:
        raw = self.raw_values()
        for key, value in PRESETS[name].items():
            current = raw.get(key)
            if key == "shortcut":
                current = current[0] if len(current) == 1 else current
            try:
                if getattr(RunConfig.from_dict({key: current}), key) != getattr(RunConfig.from_dict({key: value}), key):
                    return True
            except ConfigError:
                return True
        return False

    # -- actions -----------------------------------------------------------------------------------------------------
    @on(Button.Pressed, "#launch")
    def action_launch(self) -> None:
        self.revalidate()
        if self.errors:
            first = next(iter(self.errors))
            self.notify(f"cannot launch: {len(self.errors)} field(s) need fixing ({', '.join(self.errors)})",
                        severity="error", timeout=6)
            target = self.query_one("#f-shortcut-A" if first == "shortcut" else f"#f-{first}")
            target.focus()
            return
        where = str(self.query_one("#where", Select).value)
        try:
            ids = self.app.launch(self.configs, where=where)
        except Exception as exc:  # noqa: BLE001 - e.g. a runs folder that cannot be written
            self.notify(f"cannot create the run folders: {exc}", severity="error", timeout=10)
            return
        if where == "queue":
            self.app.open_queue(replace=True)
        else:
            self.app.open_run(ids[0], "monitor", replace=True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.app.pop_screen()
