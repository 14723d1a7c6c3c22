"""New-run form: every RunConfig field, grouped as core.spec.field_help.GROUPS, with its help and its validation error.

Depth and seed take several values ("20,56,110", "1-5") and several shortcuts can be ticked: the launch creates
that grid of runs (core.spec.grid). Validation is RunConfig's own (from_dict + validate) for every run of the
grid, plus the data folder (core.data.datasets.find_data while editing, core.data.cifar.check_data, the CLI's check,
before anything is created); while anything is invalid the field says why and ctrl+s refuses to launch.

Built to be typed into at once: few, light widgets (screens/widgets/form_fields.py); keys typed while it is still
being built are held and replayed in order (screens/widgets/typeahead.py); a field that gets the focus has its text
selected, so typing replaces it. The last settings are remembered across app restarts (core/store/settings.py),
but one launch's own (name, sweep name, seed, variants). A preset sets its whole recipe (field_help.RECIPE).

The fields' values and the form's rules are screens/new_run_model.py's ``NewRunModel`` (tests drive it without a
screen); this screen shows it: the widgets' values go into the model before each check (``_sync``), and what the
model changed comes back into the widgets as the program's values, not the user's (``_show_changes``).
"""
from __future__ import annotations

import functools
import os
from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Checkbox, Input, Label, Static

from core.serve.gpus import has_gpu
from core.spec import config as C
from core.spec.config import RunConfig
from core.spec.field_help import FIELD_HELP, FORM_FIELDS, GROUPS
from core.spec.presets import PRESET_HELP, PRESETS
from core.store.estimate import estimate
from core.store.settings import load_form_settings, save_form_settings

from .new_run_launch import LaunchMixin
from .new_run_model import CUSTOM, NewRunModel
from .widgets.choice import Choice
from .widgets.form_fields import REMEMBERED_TEXT, field_widget
from .widgets.form_text import VARIANTS_HELP, field_help, focus_help_text, scaled_text, summary_text
from .widgets.ordered_input import OrderedInput
from .widgets.resume import RestyleWhenChanged
from .widgets.study_fields import STUDY_FIELDS, study_widgets
from .widgets.typeahead import replay

WHERE = (("queue (background, every GPU)", "queue"),
         ("this app (a thread; stops when you quit)", "app"))
WHERE_NO_GPU = "queue (background, on the CPU)"
MESSAGES = (*FORM_FIELDS, "variants", *STUDY_FIELDS)      # the fields with a message (help, note, error) beside them


def unless_closing(handler):
    """Skip a form handler while the app closes. The form is built in advance, so a quit (or a test's end) can come
    while it is still mounting: Textual prunes it after the screens on the stack, and its handlers would query
    widgets already gone or focus a field with no screen left (a traceback on exit)."""
    @functools.wraps(handler)
    def guarded(self, *args, **kwargs):
        if self.app.is_running:
            return handler(self, *args, **kwargs)
        return None
    return guarded


class NewRunScreen(LaunchMixin, RestyleWhenChanged, Screen):
    """Below 110 columns each field's help moves to a panel that follows the focus; errors always show inline."""

    CSS_PATH = "new_run.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    HELP_TITLE = "new run"
    KEYS_HELP = [("← → space", "step through a choice (a letter jumps to the option that starts with it)"),
                 ("← → a b n", "shortcut: move between A, B and none; a letter ticks or unticks its box (space too)"),
                 ("typing", "replaces a field's text (it is selected when the field gets the focus)")]
    BINDINGS = [
        Binding("ctrl+s", "launch", "Launch", priority=True),
        Binding("escape", "cancel", "Cancel"),
        # priority: the form's scroll container would take them to scroll (no field uses up or down)
        Binding("down", "app.focus_next", "Next field", show=False, priority=True),
        Binding("up", "app.focus_previous", "Previous field", show=False, priority=True),
    ]

    def __init__(self, initial: RunConfig | None = None, remembered: dict[str, Any] | None = None,
                 data_dir: str = ""):
        """``initial``: a clone's settings; otherwise the remembered ones (``remembered``, default: the settings
        file) on top of the he2016 preset, with ``data_dir`` (the app's --data-dir) when given."""
        super().__init__()
        if initial is None and remembered is None:
            remembered = load_form_settings()
        self.gpu = has_gpu()
        # in a browser (`serve`) a run of this app would stop when the tab closes: the queue by default there too
        served = "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")
        self.model = NewRunModel.starting(initial, remembered or {}, data_dir,
                                          default_where="queue" if self.gpu or served else "app")
        self.preset_name, self.where = self.model.fields["preset"], self.model.fields["where"]
        self._programmatic: dict[str, Any] = {}  # widget id -> the value this screen put there (not the user)
        self.typed_ahead: list | None = []       # keys held until the form is ready (screens/widgets/typeahead.py)
        self._launching = False
        self._mounted = False
        self._laid_out_for = None                  # the terminal size of the last layout (see on_screen_resume)
        self._pending: RunConfig | None = None    # a clone's settings that came before the fields were built
        self._narrow: bool | None = None           # the help beside each field, or (narrow) under the form
        self._shown: dict[str, tuple] = {}         # field -> (error, note, narrow) on screen

    # the launch the form describes, or what is wrong (screens/new_run_model.py)
    errors = property(lambda self: self.model.errors)
    notes = property(lambda self: self.model.notes)
    configs = property(lambda self: self.model.configs)
    study = property(lambda self: self.model.study)

    @property
    def ready(self) -> bool:
        return self.typed_ahead is None

    # -- layout --------------------------------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # On a narrow terminal the help starts empty, not emptied after a first layout: Textual's grid can keep a
        # row as high as the text it held then, a form taller (another scrollbar) depending on the machine's speed
        narrow = self.app.size.width < self.HORIZONTAL_BREAKPOINTS[1][0]
        yield Static(Text.assemble(("New run", "bold"), "  fill in, then ctrl+s to launch; esc cancels"), id="title")
        yield Static(REMEMBERED_TEXT, id="remembered")
        with VerticalScroll(id="form"):
            with Grid(classes="fields", id="head"):
                yield Label("preset", classes="name")
                yield Choice([(name, name) for name in PRESETS] + [("custom", CUSTOM)], self.preset_name, id="preset")
                yield Static("" if narrow else PRESET_HELP.get(self.preset_name, "your own settings"), id="msg-preset",
                             classes="msg help")
                yield Label("runs in", classes="name")
                yield Choice([(label if self.gpu or key != "queue" else WHERE_NO_GPU, key) for label, key in WHERE],
                             self.where, id="where", classes="span2")
                yield Label("variants", classes="name", id="label-variants")
                yield OrderedInput("", placeholder="optimizer=sgd lr=0.1; optimizer=adam lr=0.001", compact=True,
                                   id="f-variants", classes="field")
                yield Static("" if narrow else VARIANTS_HELP, classes="msg help", id="msg-variants")
            for group, names in GROUPS.items():
                yield Static(group, classes="group")
                with Grid(classes="fields", id=f"group-{group}"):
                    for name in names:
                        yield Label(name, classes="name", id=f"label-{name}")
                        yield field_widget(name, self.model.fields[name])
                        yield Static("" if narrow else FIELD_HELP[name], classes="msg help", id=f"msg-{name}")
            yield Static("study", classes="group")
            with Grid(classes="fields", id="group-study"):
                yield from study_widgets(narrow)
        yield Static(id="focus-help")
        yield Static(id="summary")
        with Horizontal(id="buttons"):
            yield Button("Launch  ctrl+s", id="launch", variant="success", compact=True)
            yield Button("Cancel  esc", id="cancel", compact=True)
            yield Static("  ↑↓/tab: fields  ←→: choices  ?: keys", id="keys-hint")
        # no Footer: it rebuilds itself at every focus change (Tab through 40 fields); the keys are named above

    @unless_closing
    def on_mount(self) -> None:
        for widget in self.query(".field, .field TickBox, Choice"):
            if widget.id and hasattr(widget, "value"):
                self._programmatic[widget.id] = widget.value
        self._mounted = True
        if self._pending is not None:
            self.load(self._pending)
        self._fit_help()
        self.revalidate()
        self.app.runs_changed_signal.subscribe(self, self._runs_changed)
        self.app.call_later(self._ready)

    def _runs_changed(self, changed: set[str]) -> None:
        """A run added or gone while the form is open: a name it gives may be taken now (or free)."""
        if changed and self.is_current and self._mounted and self.model.fields.get("name"):
            self.revalidate()

    @unless_closing
    def on_screen_resume(self) -> None:
        # Textual sets the breakpoint classes (narrow or wide layout) on a resize, which a form built off screen
        # (prebuilt) or opened again after the terminal changed size has not had: one for the terminal as it is now
        if self._laid_out_for != self.app.size:
            self._laid_out_for = self.app.size
            self.post_message(events.Resize.from_dimensions(self.app.size, None))
        self._fit_help()
        if self._mounted:
            self.revalidate()           # the runs folder may have changed meanwhile: a name taken since
        if self.typed_ahead is not None:
            self.app.call_later(self._ready)

    @unless_closing
    def on_resize(self) -> None:
        self._fit_help()

    def _fit_help(self) -> None:
        """Beside each field on wide terminals, in the panel under the form on narrow ones. Said with the messages'
        text, not only their style: Textual's grid keeps a row as high as its hidden text was wrapped."""
        narrow = self.app.size.width < self.HORIZONTAL_BREAKPOINTS[1][0]
        if narrow != self._narrow:
            self._narrow = narrow
            if self._mounted:
                for name in MESSAGES:
                    self._show_message(name)
                self._preset_help(PRESET_HELP.get(str(self.query_one("#preset", Choice).value), "your own settings"))

    def _preset_help(self, text: str) -> None:
        self.query_one("#msg-preset", Static).update("" if self._narrow else text)

    @unless_closing
    def _ready(self) -> None:
        """Ready (the App runs this after the keys already waiting in its queue, which it held for this screen):
        replay them into the fields, starting at depth with its text selected; then keys go their normal way."""
        if self.typed_ahead is None:
            return
        keys, self.typed_ahead = self.typed_ahead, None
        # from the top, wherever the form was left (scrolled by the mouse, depth kept the focus off screen)
        self.query_one("#form", VerticalScroll).scroll_home(animate=False, immediate=True)
        replay(self, keys, self.query_one("#f-depth", Input),
               {"escape": self.action_cancel, "ctrl+s": self.action_launch})
        if self.is_current and self.focused is not None:
            self.focused.scroll_visible(animate=False)
            self._show_focus_help(self.focused)   # a field focused already gets no focus event: its help now

    def load(self, cfg: RunConfig) -> None:
        """Fill every field from ``cfg`` (a clone; its recipe for scaled milestones, no sweep, no earlier variants);
        the preset becomes custom. Before the form is built, when it is."""
        self._pending = None if self._mounted else cfg
        if not self._mounted:
            return
        self._sync()
        self.model.load(cfg)
        self._show_changes()
        self._preset_help("your own settings")
        self.revalidate()

    # -- values ------------------------------------------------------------------------------------------------------
    def _read_fields(self) -> dict[str, Any]:
        """Every field as its widget holds it now (the model's ``fields``)."""
        raw: dict[str, Any] = {}
        for name in FORM_FIELDS:
            if name == "shortcut":
                raw[name] = [sc for sc in C.SHORTCUTS if self.query_one(f"#f-shortcut-{sc}", Checkbox).value]
            else:
                raw[name] = self.query_one(f"#f-{name}").value
        for name in ("variants", *STUDY_FIELDS):
            raw[name] = self.query_one(f"#f-{name}").value
        raw.update(preset=self.query_one("#preset", Choice).value, where=self.query_one("#where", Choice).value)
        return raw

    def _sync(self) -> None:
        """The model takes the widgets' values (the user's edits since)."""
        self.model.fields.update(self._read_fields())

    def raw_values(self) -> dict[str, Any]:
        self._sync()
        return self.model.raw()

    def variants(self) -> tuple[list[dict], str | None]:
        self._sync()
        return self.model.variants()

    def set_value(self, name: str, value: Any) -> None:
        """Put a value in a field as the program (a preset, a clone), not as a user edit."""
        self.model.set(name, value)
        self._show_changes()

    def _show_changes(self) -> None:
        """Put the values the model changed into their widgets (as the program's, not the user's)."""
        for name, value in self.model.take_changes().items():
            if name == "shortcut":
                for sc in C.SHORTCUTS:
                    self._put(f"f-shortcut-{sc}", sc in value)
            else:
                self._put(name if name in ("preset", "where") else f"f-{name}", value)

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
        """Set the preset's whole recipe (screens/new_run_model.py ``NewRunModel.apply_preset``)."""
        self._sync()
        self.model.apply_preset(name)
        self._show_changes()
        self._preset_help(PRESET_HELP[name])
        self.revalidate()

    def clear_launch_settings(self, seed: bool = True) -> None:
        """Empty one launch's own settings (field_help.PER_LAUNCH, the variants): no second copy of a sweep."""
        self.model.clear_launch_settings(seed)
        self._show_changes()

    # -- validation --------------------------------------------------------------------------------------------------
    def revalidate(self) -> None:
        self._sync()
        self.model.store, self.model.known_ids = self.app.store, self.app.watcher.ids
        self.model.validate()
        self._show_changes()                    # milestones scaled to the run's length
        for name in MESSAGES:
            self._show_message(name)
        self._show_summary()
        self.query_one("#launch", Button).disabled = bool(self.errors)
        if self.focused is not None and self.focused.id:
            self._show_focus_help(self.focused)      # its error (or none) as the field holds it now

    def _show_message(self, name: str) -> None:
        invalid, note = name in self.errors, self.notes.get(name)
        help_text = field_help(name, str(self.query_one("#f-arch").value)) or VARIANTS_HELP   # depth: per arch
        shown = (self.errors.get(name), note, self._narrow, help_text)
        if self._shown.get(name) == shown:
            return                  # unchanged: no restyling (each costs a style pass over the widget)
        self._shown[name] = shown
        msg, label = self.query_one(f"#msg-{name}", Static), self.query_one(f"#label-{name}", Label)
        if invalid:
            msg.update(Text("✗ " + self.errors[name], style="bold red"))
        elif note:
            msg.update(Text("⚠ " + note, style="yellow"))
        else:   # narrow: the help is in the panel under the form (an empty line keeps the row one line high)
            msg.update("" if self._narrow else Text(help_text))
        msg.set_class(invalid, "invalid")
        label.set_class(invalid, "invalid")
        msg.set_class(not invalid and not note, "help")

    def _show_summary(self) -> None:
        kind, eta = ("cuda" if self.gpu else "cpu"), None
        if self.study is not None and not self.errors:
            self.query_one("#summary", Static).update(Text(
                f"study {self.study.name}: {self.study.budget_text()}; its trials train in the queue", style="bold"))
            return
        if self.configs and not self.errors:
            watcher = getattr(self.app, "watcher", None)
            eta = estimate(self.configs, watcher.infos.values() if watcher else (), kind)
        self.query_one("#summary", Static).update(
            summary_text(self.configs, self.errors, str(self.query_one("#where", Choice).value), eta, kind,
                         scaled=scaled_text(self.model.recipe, self.model.scaled[0] if self.model.scaled else None,
                                            "milestones" in self.notes)))

    @unless_closing
    def on_input_changed(self, event: Input.Changed) -> None:
        self._after_change(self._by_user(event.input.id, event.value), event.input.id)

    @unless_closing
    def on_choice_changed(self, event: Choice.Changed) -> None:
        by_user = self._by_user(event.choice.id, event.value)
        if event.choice.id == "preset":
            if by_user and event.value != CUSTOM:
                self.apply_preset(str(event.value))
            self._preset_help(PRESET_HELP.get(str(event.value), "your own settings"))
            if self.focused is event.choice:
                self._show_focus_help(event.choice)      # the help under the form names the preset now chosen
            return
        if event.choice.id == "where":
            self.revalidate()
            return
        self._after_change(by_user, event.choice.id)

    @unless_closing
    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._after_change(self._by_user(event.checkbox.id, event.value), "f-shortcut")

    @unless_closing
    def on_descendant_focus(self, event) -> None:
        self._show_focus_help(event.widget)

    def _show_focus_help(self, widget) -> None:
        """Show the focused field's help with its error as it is now (the inline help is hidden on narrow
        terminals)."""
        self.query_one("#focus-help", Static).update(focus_help_text(
            str(widget.id or ""), str(self.query_one("#preset", Choice).value), self.errors, self.notes,
            str(self.query_one("#f-arch").value)))

    def _after_change(self, by_user: bool, widget_id: str | None) -> None:
        """After an edit (the echoes of values the program set are checked by whoever set them): the form's rules
        (``NewRunModel.edited``: epochs clears iterations, width and widths agree, a preset left is custom)."""
        if not by_user:
            return
        self._sync()
        notice = self.model.edited(str(widget_id or "").removeprefix("f-"))
        self._show_changes()
        if notice:
            self.notify(notice, timeout=4)
        self.revalidate()

    # -- actions -----------------------------------------------------------------------------------------------------
    def remember(self) -> None:
        """Keep the form's settings for the next opening, in this app or after a restart."""
        self._sync()
        save_form_settings(self.model.remembered())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.ready:
            self.remember()
        self.app.pop_screen()
