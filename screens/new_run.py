"""New-run form: every RunConfig field, grouped as core.spec.field_help.GROUPS, with its help and its validation error.

Depth and seed take several values ("20,56,110", "1-5") and several shortcuts can be ticked: the launch creates
that grid of runs (core.spec.grid). Validation is RunConfig's own (from_dict + validate) for every run of the
grid, plus the data folder (core.data.datasets.find_data while editing, core.data.cifar.check_data, the CLI's check,
before anything is created); while anything is invalid the field says why and ctrl+s refuses to launch.

Built to be typed into at once: few, light widgets (screens/widgets/form_fields.py); keys typed while it is still
being built are held and replayed in order (screens/widgets/typeahead.py); a field that gets the focus has its text
selected, so typing replaces it. The last settings are remembered across app restarts (core/store/settings.py),
but one launch's own (name, sweep name, seed, variants). A preset sets its whole recipe (field_help.RECIPE).
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

from core.data.datasets import DataError, find_data, resolve_data_dir
from core.data.plan import milestone_error, planned_steps, warmup_steps
from core.serve.gpus import has_gpu
from core.spec import config as C
from core.spec.config import PRESET_HELP, PRESETS, RunConfig
from core.spec.field_help import FIELD_HELP, FORM_FIELDS, GROUPS, PER_LAUNCH, RECIPE
from core.spec.grid import grid_configs, parse_variant
from core.store.estimate import estimate
from core.store.runs import names_taken_text
from core.store.settings import load_form_settings, save_form_settings
from core.study.spec import StudySpec

from .new_run_launch import LaunchMixin
from .widgets.choice import Choice
from .widgets.form_fields import (
    CUSTOM,
    REMEMBERED_TEXT,
    as_text,
    automatic_milestones,
    differs_from_preset,
    field_widget,
    paired_width,
    starting_values,
)
from .widgets.form_text import VARIANTS_HELP, field_help, focus_help_text, scaled_text, summary_text
from .widgets.ordered_input import OrderedInput
from .widgets.resume import RestyleWhenChanged
from .widgets.study_fields import STUDY_FIELDS, check_study, study_widgets
from .widgets.typeahead import replay

WHERE = (("queue (background, every GPU)", "queue"),
         ("this app (a thread; stops when you quit)", "app"))
WHERE_NO_GPU = "queue (background, on the CPU)"
DATA_FIELDS = ("dataset", "data_dir", "download")
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
        self.values, self.preset_name, where = starting_values(initial, remembered or {}, data_dir)
        recipe = (remembered or {}).get("recipe", self.preset_name)
        self.gpu = has_gpu()
        # in a browser (`serve`) a run of this app would stop when the tab closes: the queue by default there too
        served = "web_driver" in os.environ.get("TEXTUAL_DRIVER", "")
        self.where = where if where in dict((k, k) for _, k in WHERE) else ("queue" if self.gpu or served else "app")
        self._programmatic: dict[str, Any] = {}  # widget id -> the value this screen put there (not the user)
        self.errors: dict[str, str] = {}
        self.notes: dict[str, str] = {}          # warnings that do not block the launch (warm-up, a download)
        self.configs: list[RunConfig] = []
        self.study: StudySpec | None = None      # the study the form describes (a study name given), else runs
        self.typed_ahead: list | None = []       # keys held until the form is ready (screens/widgets/typeahead.py)
        self._data: tuple[tuple, str | None, str | None] = ((), None, None)   # (data fields, error, note)
        self._launching = False
        self._mounted = False
        self._laid_out_for = None                  # the terminal size of the last layout (see on_screen_resume)
        self._pending: RunConfig | None = None    # a clone's settings that came before the fields were built
        self._narrow: bool | None = None           # the help beside each field, or (narrow) under the form
        self._shown: dict[str, tuple] = {}         # field -> (error, note, narrow) on screen
        # the recipe whose milestones a shorter run scales (core.data.plan.scale_milestones), and the last scaling
        self._recipe = C.preset(recipe) if initial is None and recipe in PRESETS else (initial or RunConfig())
        self._scaled: tuple[tuple, str] | None = None

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
                        yield field_widget(name, self.values[name])
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
        self.app.call_later(self._ready)

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
        for name, value in cfg.to_dict().items():
            if name in FORM_FIELDS:          # a trial's study fields stay behind: the clone is a run of its own
                self.set_value(name, value)
        self._recipe, self._scaled = cfg, None
        self.clear_launch_settings(seed=False)
        self._put("preset", CUSTOM)
        self._preset_help("your own settings")
        self.revalidate()

    # -- values ------------------------------------------------------------------------------------------------------
    def raw_values(self) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for name in FORM_FIELDS:
            if name == "shortcut":
                raw[name] = [sc for sc in C.SHORTCUTS if self.query_one(f"#f-shortcut-{sc}", Checkbox).value]
            else:
                raw[name] = self.query_one(f"#f-{name}").value
        return raw

    def variants(self) -> tuple[list[dict], str | None]:
        """The paired settings typed in the variants field ('optimizer=sgd lr=0.1; optimizer=adam lr=0.001'), and
        what is wrong with them (None when nothing)."""
        out = []
        for part in (p for p in self.query_one("#f-variants", Input).value.split(";") if p.strip()):
            try:
                out.append(parse_variant(part))
            except ValueError as exc:
                return [], f"{part.strip()!r}: {exc}"
        return out, None

    def set_value(self, name: str, value: Any) -> None:
        """Put a value in a field as the program (a preset, a clone), not as a user edit."""
        if name == "shortcut":
            for sc in C.SHORTCUTS:
                self._put(f"f-shortcut-{sc}", sc == value)
        elif isinstance(self.query_one(f"#f-{name}"), Input):
            self._put(f"f-{name}", as_text(value))
        else:
            self._put(f"f-{name}", value)

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
        """Set the preset's whole recipe (field_help.RECIPE) whatever the preset before set; data, speed, device and
        seed stay the user's; a launch's variants and sweep name go."""
        self._recipe, self._scaled = C.preset(name), None
        for key in RECIPE:          # widths too: a preset that gives width alone has w, 2w, 4w
            self.set_value(key, getattr(self._recipe, key))
        self.clear_launch_settings(seed=False)
        self._preset_help(PRESET_HELP[name])
        self.revalidate()

    def clear_launch_settings(self, seed: bool = True) -> None:
        """Empty one launch's own settings (field_help.PER_LAUNCH, the variants): no second copy of a sweep."""
        self._put("f-variants", "")
        self._put("f-study", "")
        self.set_value("name", "")
        self.set_value("sweep_name", "")
        if seed:
            self.set_value("seed", RunConfig().seed)

    # -- validation --------------------------------------------------------------------------------------------------
    def revalidate(self) -> None:
        variants, problem = self.variants()
        self.notes = {}
        self._fit_milestones(variants)
        self.configs, self.errors = grid_configs(self.raw_values(), variants)
        if problem:
            self.errors["variants"], self.configs = problem, []
        for key in sorted({k for v in variants for k in v} & set(self.errors)):   # a variant's value is at fault
            self.errors.setdefault("variants", f"{key}: {self.errors.pop(key)}")
        if self.configs and (problem := milestone_error(self.configs[0])):
            self.errors["milestones"], self.configs = problem, []
        if self.configs:
            self._check_fit(self.configs[0])
        if self.configs and (taken := self.app.store.taken_names(self.configs)):   # the CLI's rule for --name
            self.errors["name"] = (f"{names_taken_text(taken, self.app.store.root)}; pick another or leave it empty "
                                   f"for a generated name")
            self.configs = []
        self.study, problems = check_study({n: self.query_one(f"#f-{n}").value for n in STUDY_FIELDS},
                                           self.configs, variants, self.errors)
        self.errors.update(problems)
        for name in MESSAGES:
            self._show_message(name)
        self._show_summary()
        self.query_one("#launch", Button).disabled = bool(self.errors)
        if self.focused is not None and self.focused.id:
            self._show_focus_help(self.focused)      # its error (or none) as the field holds it now

    def _fit_milestones(self, variants: list[dict]) -> None:
        """The CLI's rule for milestones (screens/widgets/form_fields.py ``automatic_milestones``): the recipe's
        scaled to a shorter run, with a note, and given back at the recipe's length; typed ones are the user's."""
        fitted = automatic_milestones(self.raw_values(), variants, self._recipe, (self._scaled or [None])[0])
        milestones, note, changed = fitted or ((), None, False)
        self._scaled = (milestones, note) if note else None
        if changed:
            self.set_value("milestones", milestones)
        if note:
            self.notes["milestones"] = note

    def _check_fit(self, cfg: RunConfig) -> None:
        """What RunConfig cannot know alone: is the data there, does the warm-up fit the run's length."""
        key = tuple(getattr(cfg, k) for k in DATA_FIELDS)
        if self._data[0] != key:
            self._data = (key, *self._look_for_data(cfg))
        if self._data[1]:
            self.errors["data_dir"] = self._data[1]
        elif self._data[2]:
            self.notes["data_dir"] = self._data[2]
        _, total = planned_steps(cfg)
        warm = warmup_steps(cfg.warmup_iters, total)
        if warm < cfg.warmup_iters:
            self.notes["warmup_iters"] = (f"this run has about {total:,} iterations: the warm-up is shortened to "
                                          f"{warm}, a tenth of it")

    @staticmethod
    def _look_for_data(cfg: RunConfig) -> tuple[str | None, str | None]:
        """(error, note) about the data set: where it is, a few file checks (core.data.datasets: no torch)."""
        try:
            find_data(cfg)
        except DataError as exc:
            if not cfg.download:
                return str(exc), None
            return None, (f"{cfg.dataset} is not in {resolve_data_dir(cfg).absolute()} yet: the run downloads it "
                          f"there first (about 170 MB)")
        return None, None

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
                         scaled=scaled_text(self._recipe, self._scaled[0] if self._scaled else None,
                                            "milestones" in self.notes)))

    @unless_closing
    def on_input_changed(self, event: Input.Changed) -> None:
        by_user = self._by_user(event.input.id, event.value)
        if by_user and event.input.id == "f-epochs":
            iters = self.query_one("#f-iterations", Input)
            if iters.value.strip() not in ("0", ""):
                self._put("f-iterations", "0")
                self.notify("iterations set to 0, so that epochs sets the length", timeout=4)
        if by_user and event.input.id in ("f-width", "f-widths"):    # the two never disagree (core/spec/config.py)
            other, text = paired_width(event.input.id.removeprefix("f-"), event.value)
            if text is not None:
                self._put(f"f-{other}", text)
        self._after_change(by_user)

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
        self._after_change(by_user)

    @unless_closing
    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._after_change(self._by_user(event.checkbox.id, event.value))

    @unless_closing
    def on_descendant_focus(self, event) -> None:
        self._show_focus_help(event.widget)

    def _show_focus_help(self, widget) -> None:
        """Show the focused field's help with its error as it is now (the inline help is hidden on narrow
        terminals)."""
        self.query_one("#focus-help", Static).update(focus_help_text(
            str(widget.id or ""), str(self.query_one("#preset", Choice).value), self.errors, self.notes,
            str(self.query_one("#f-arch").value)))

    def _after_change(self, by_user: bool) -> None:
        """After an edit (the echoes of values the program set are checked by whoever set them)."""
        if not by_user:
            return
        preset = self.query_one("#preset", Choice)
        if preset.value != CUSTOM and differs_from_preset(self.raw_values(), str(preset.value)):
            self._put("preset", CUSTOM)
        self.revalidate()

    # -- actions -----------------------------------------------------------------------------------------------------
    def remember(self) -> None:
        """Keep the form's settings for the next opening, in this app or after a restart."""
        raw = {k: v for k, v in self.raw_values().items() if k not in PER_LAUNCH}
        recipe = next((name for name in PRESETS if C.preset(name) == self._recipe), None)
        save_form_settings({"preset": self.query_one("#preset", Choice).value, "recipe": recipe,
                            "where": self.query_one("#where", Choice).value, "fields": raw})

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        if self.ready:
            self.remember()
        self.app.pop_screen()
