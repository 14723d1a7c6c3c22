"""The new-run form's state and rules without its widgets: screens/new_run.py shows a ``NewRunModel``, tests drive one
without a screen.

The model holds each field as its widget holds it (``fields``: text for numbers and lists, a choice's value, a
tick's bool, the ticked shortcuts; the variants, the study's fields, the preset and where the runs go), and the recipe
a shorter run's milestones are scaled from. ``apply_preset``, ``load`` (a clone) and ``edited`` (after the user
changed a field) change them by the form's rules; ``validate`` turns them into the launch (``configs``, a grid of
runs; or ``study``) or says what is wrong with each field (``errors``; ``notes`` warn without blocking), as the CLI
would. The values the model changes itself are in ``take_changes()``, for the screen to show.

Starting values: a clone's config (less its sweep name and run name); else the settings remembered from the last
launch or cancel (core/store/settings.py, in the user's config folder) on top of the he2016 preset, less one launch's
own (core.spec.field_help.PER_LAUNCH: name, sweep name, seed); the app's --data-dir wins over a remembered folder.
A remembered preset whose recipe the remembered settings no longer match opens as custom.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from core.data.datasets import DataError, find_data, resolve_data_dir
from core.data.plan import milestone_error, planned_steps, scale_milestones, warmup_steps
from core.spec import config as C
from core.spec.config import ConfigError, RunConfig
from core.spec.field_help import CHOICES, FORM_FIELDS, PER_LAUNCH, RECIPE, SETTINGS
from core.spec.grid import grid_configs, parse_values, parse_variant
from core.spec.presets import PRESETS, preset
from core.store.runs import RunStore, names_taken_text
from core.study.spec import PRUNERS, SAMPLERS, StudySpec

from .widgets.study_fields import STUDY_FIELDS, check_study

BOOLS = {name for name, setting in SETTINGS.items() if setting.kind == "bool"}
CUSTOM = "custom"
DATA_FIELDS = ("dataset", "data_dir", "download")
WHERES = ("queue", "app")


def as_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def shown(name: str, value: Any) -> Any:
    """``value`` of field ``name`` as its widget holds it."""
    if name == "shortcut":
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if name in BOOLS:
        return bool(value)
    if name in CHOICES:
        return str(value)
    return as_text(value)


class NewRunModel:
    """The form's fields and what they make. ``store``: the runs folder whose names a run's name must not take."""

    def __init__(self, values: dict[str, Any], preset_name: str, recipe: RunConfig, where: str = "app",
                 store: RunStore | None = None):
        self.store = store
        self.known_ids: Callable[[], set[str]] | None = None     # the run ids the app has listed (``_taken``)
        self.fields: dict[str, Any] = {name: shown(name, values[name]) for name in FORM_FIELDS}
        self.fields.update(variants="", study="", space="", trials="", sampler=SAMPLERS[0], pruner=PRUNERS[0],
                           preset=preset_name, where=where)
        self.recipe = recipe                  # the recipe whose milestones a shorter run scales
        self.scaled: tuple[tuple, str] | None = None    # the last scaling: (milestones, note)
        self.errors: dict[str, str] = {}
        self.notes: dict[str, str] = {}      # warnings that do not block the launch (warm-up, a download)
        self.configs: list[RunConfig] = []
        self.study: StudySpec | None = None  # the study the form describes (a study name given), else runs
        self.data: tuple[tuple, str | None, str | None] = ((), None, None)   # (data fields, error, note)
        self.changes: dict[str, Any] = {}    # fields the model changed, not yet shown

    @classmethod
    def starting(cls, initial: RunConfig | None, remembered: dict[str, Any], data_dir: str = "",
                 default_where: str = "app", store: RunStore | None = None) -> NewRunModel:
        """The form as it opens: a clone's settings (``initial``), else the remembered ones on top of a preset."""
        values, preset_name, where = starting_values(initial, remembered, data_dir)
        recipe_name = remembered.get("recipe", preset_name)
        recipe = preset(recipe_name) if initial is None and recipe_name in PRESETS else (initial or RunConfig())
        return cls(values, preset_name, recipe, where if where in WHERES else default_where, store)

    # -- changes -------------------------------------------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Put a value in a field as the program (a preset, a clone), not as a user edit."""
        self.fields[name] = shown(name, value) if name in FORM_FIELDS else value
        self.changes[name] = self.fields[name]

    def take_changes(self) -> dict[str, Any]:
        changes, self.changes = self.changes, {}
        return changes

    def edited(self, name: str) -> str | None:
        """The user changed field ``name`` (already in ``fields``): epochs clears iterations (returns the notice),
        width and widths keep agreeing, a preset left becomes custom. Then ``validate``."""
        notice = None
        if name == "epochs" and str(self.fields["iterations"]).strip() not in ("0", ""):
            self.set("iterations", "0")
            notice = "iterations set to 0, so that epochs sets the length"
        if name in ("width", "widths"):    # the two never disagree (core/spec/config.py)
            other, text = paired_width(name, str(self.fields[name]))
            if text is not None:
                self.set(other, text)
        if self.fields["preset"] != CUSTOM and differs_from_preset(self.raw(), str(self.fields["preset"])):
            self.set("preset", CUSTOM)
        return notice

    def apply_preset(self, name: str) -> None:
        """Set the preset's whole recipe (field_help.RECIPE) whatever the preset before set; data, speed, device and
        seed stay the user's; a launch's variants and sweep name go."""
        self.recipe, self.scaled = preset(name), None
        for key in RECIPE:          # widths too: a preset that gives width alone has w, 2w, 4w
            self.set(key, getattr(self.recipe, key))
        self.clear_launch_settings(seed=False)
        self.set("preset", name)

    def load(self, cfg: RunConfig) -> None:
        """Every field from ``cfg`` (a clone; its recipe for scaled milestones, no sweep, no earlier variants); the
        preset becomes custom."""
        for name, value in cfg.to_dict().items():
            if name in FORM_FIELDS:          # a trial's study fields stay behind: the clone is a run of its own
                self.set(name, value)
        self.recipe, self.scaled = cfg, None
        self.clear_launch_settings(seed=False)
        self.set("preset", CUSTOM)

    def clear_launch_settings(self, seed: bool = True) -> None:
        """Empty one launch's own settings (field_help.PER_LAUNCH, the variants): no second copy of a sweep."""
        for name in ("variants", "study", "name", "sweep_name"):
            self.set(name, "")
        if seed:
            self.set("seed", RunConfig().seed)

    # -- values ------------------------------------------------------------------------------------------------------
    def raw(self) -> dict[str, Any]:
        """The settings' fields as their widgets hold them (what core.spec.grid.grid_configs reads)."""
        return {name: self.fields[name] for name in FORM_FIELDS}

    def variants(self) -> tuple[list[dict], str | None]:
        """The paired settings typed in the variants field ('optimizer=sgd lr=0.1; optimizer=adam lr=0.001'), and
        what is wrong with them (None when nothing)."""
        out = []
        for part in (p for p in str(self.fields["variants"]).split(";") if p.strip()):
            try:
                out.append(parse_variant(part))
            except ValueError as exc:
                return [], f"{part.strip()!r}: {exc}"
        return out, None

    def remembered(self) -> dict[str, Any]:
        """What the next form starts from (core/store/settings.py): all but one launch's own settings."""
        recipe = next((name for name in PRESETS if preset(name) == self.recipe), None)
        return {"preset": self.fields["preset"], "recipe": recipe, "where": self.fields["where"],
                "fields": {k: v for k, v in self.raw().items() if k not in PER_LAUNCH}}

    # -- validation --------------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """``configs`` (or ``study``) from the fields, or ``errors``: RunConfig's own rules for every run of the grid,
        the milestones and warm-up against the run's length, the data folder, a name already taken, the study."""
        variants, problem = self.variants()
        self.notes = {}
        self._fit_milestones(variants)
        self.configs, self.errors = grid_configs(self.raw(), variants)
        if problem:
            self.errors["variants"], self.configs = problem, []
        for key in sorted({k for v in variants for k in v} & set(self.errors)):   # a variant's value is at fault
            self.errors.setdefault("variants", f"{key}: {self.errors.pop(key)}")
        if self.configs and (problem := milestone_error(self.configs[0])):
            self.errors["milestones"], self.configs = problem, []
        if self.configs:
            self._check_fit(self.configs[0])
        if self.configs and self.store is not None and (taken := self._taken(self.configs)):
            self.errors["name"] = (f"{names_taken_text(taken, self.store.root)}; pick another or leave it empty "
                                   f"for a generated name")          # the CLI's rule for --name
            self.configs = []
        self.study, problems = check_study({n: self.fields[n] for n in STUDY_FIELDS}, self.configs, variants,
                                           self.errors)
        self.errors.update(problems)

    def _taken(self, configs: list[RunConfig]) -> list[str]:
        """The names given that a run has: of the runs the app has listed (``known_ids``, no file read on the
        event loop at each keystroke), else of the folder; the launch checks the folder again."""
        if self.known_ids is None:
            return self.store.taken_names(configs)
        known = self.known_ids()
        return [c.name for c in configs if c.name and c.name in known]

    def refuse_data(self, message: str) -> None:
        """The launch's data check (core.data.cifar.check_data) failed: the data folder's error until it changes (the
        next ``validate`` says so)."""
        self.data = (self.data[0], message, None)

    def _fit_milestones(self, variants: list[dict]) -> None:
        """The CLI's rule for milestones (``automatic_milestones``): the recipe's scaled to a shorter run, with a
        note, and given back at the recipe's length; typed ones are the user's."""
        fitted = automatic_milestones(self.raw(), variants, self.recipe, (self.scaled or [None])[0])
        milestones, note, changed = fitted or ((), None, False)
        self.scaled = (milestones, note) if note else None
        if changed:
            self.set("milestones", milestones)
        if note:
            self.notes["milestones"] = note

    def _check_fit(self, cfg: RunConfig) -> None:
        """What RunConfig cannot know alone: is the data there, does the warm-up fit the run's length."""
        key = tuple(getattr(cfg, k) for k in DATA_FIELDS)
        if self.data[0] != key:
            self.data = (key, *look_for_data(cfg))
        if self.data[1]:
            self.errors["data_dir"] = self.data[1]
        elif self.data[2]:
            self.notes["data_dir"] = self.data[2]
        _, total = planned_steps(cfg)
        warm = warmup_steps(cfg.warmup_iters, total)
        if warm < cfg.warmup_iters:
            self.notes["warmup_iters"] = (f"this run has about {total:,} iterations: the warm-up is shortened to "
                                          f"{warm}, a tenth of it")


def look_for_data(cfg: RunConfig) -> tuple[str | None, str | None]:
    """(error, note) about the data set: where it is, a few file checks (core.data.datasets: no torch)."""
    try:
        find_data(cfg)
    except DataError as exc:
        if not cfg.download:
            return str(exc), None
        return None, (f"{cfg.dataset} is not in {resolve_data_dir(cfg).absolute()} yet: the run downloads it "
                      f"there first (about 170 MB)")
    return None, None


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
