"""The new-run form's study group: a name turns the launch into a study (core/study) instead of runs.

The form's other fields are the study's fixed settings (one value each); ``space`` holds the settings searched, as
``study --space`` takes them (``lr=log:1e-4:1e-1 optimizer=sgd,adam``: a range where a sweep field takes a list);
trials, sampler and pruner are ``study``'s flags. Checked as the CLI checks (core/study/spec.py ``new_spec``).
A study is one launch's: none of these fields is remembered for the next form.
"""
from __future__ import annotations

import re
from typing import Any

from textual.widgets import Label, Static

from core.spec.config import RunConfig
from core.study.spec import PRUNERS, SAMPLERS, StudySpec, new_spec

from .choice import Choice
from .ordered_input import OrderedInput

STUDY_FIELDS = ("study", "space", "trials", "sampler", "pruner")
STUDY_HELP = {
    "study": "Empty: launch runs. A name: launch a study instead, a search over the space below whose trials are "
             "runs in the queue (needs val_split: trials are ranked on validation images, never the test set)",
    "space": "Settings to search, space-separated: lr=log:1e-4:1e-1 (log range), dropout=0:0.5, width=8:32:8 "
             "(a step), optimizer=sgd,adam (choices); the fields above are the settings every trial shares",
    "trials": "Trials in all (each a run of up to `epochs` epochs)",
    "sampler": "Optuna's sampler: tpe (learns from finished trials), random, grid (choices only), cmaes, nsga2",
    "pruner": "asha: stop the weak at rungs with their checkpoint, resume them if promoted; median; none",
}
PLACEHOLDERS = {"study": "(empty: runs)", "space": "lr=log:1e-4:1e-1 weight_decay=log:1e-5:1e-3",
                "trials": "20"}
FLAG_FIELD = {"NAME": "study", "--space": "space", "--trials": "trials", "--sampler": "sampler",
              "--pruner": "pruner", "--val-split": "val_split", "--epochs": "epochs"}


def study_widgets(narrow: bool):
    """Label, field and message of each study field (ids as the form's own: label-X, f-X, msg-X)."""
    for name in STUDY_FIELDS:
        yield Label(name, classes="name", id=f"label-{name}")
        if name in ("sampler", "pruner"):
            options = SAMPLERS if name == "sampler" else PRUNERS
            field: Any = Choice([(o, o) for o in options], options[0], id=f"f-{name}", classes="field")
        else:
            field = OrderedInput("", placeholder=PLACEHOLDERS[name], compact=True, id=f"f-{name}", classes="field")
        field.tooltip = STUDY_HELP[name]
        yield field
        yield Static("" if narrow else STUDY_HELP[name], classes="msg help", id=f"msg-{name}")


def check_study(values: dict[str, Any], configs: list[RunConfig], variants: list[dict],
                errors: dict[str, str]) -> tuple[StudySpec | None, dict[str, str]]:
    """The study the form describes (None: runs, or something is wrong) and field -> what is wrong with it.

    ``values``: the study fields' texts; ``configs``/``variants``/``errors``: what the form's other fields make."""
    name = str(values.get("study", "")).strip()
    if not name:
        return None, {}
    if variants:
        return None, {"study": "a study searches a space: empty the variants field (or the study name for runs)"}
    if len(configs) > 1:
        return None, {"study": f"the fields above make {len(configs)} runs (a list or several shortcuts): a study's "
                               f"fixed settings take one value each; search a setting in space instead"}
    trials_text = str(values.get("trials", "")).strip() or "20"
    if not re.fullmatch(r"\d+", trials_text):
        return None, {"trials": f"a whole number of trials, got {trials_text!r}"}
    if errors or not configs:
        return None, {}                                   # the fields above say what is wrong first
    space = [part for part in re.split(r"[\s;]+", str(values.get("space", ""))) if part]
    if not space:
        return None, {"space": "give at least one setting to search, e.g. lr=log:1e-4:1e-1 optimizer=sgd,adam"}
    spec, problems = new_spec(name, configs[0], space, trials=int(trials_text), sampler=str(values["sampler"]),
                              pruner=str(values["pruner"]))
    return spec, {FLAG_FIELD.get(flag, "study"): as_fields(text) for flag, text in problems.items()}


def as_fields(text: str) -> str:
    """The CLI's words in the form's: --val-split N -> val_split."""
    text = text.removeprefix("--space ")
    for word in re.findall(r"--[a-z][a-z-]*", text):
        text = text.replace(word, word[2:].replace("-", "_"))
    return text.replace("_split N", "_split").replace("epochs N", "epochs")


def start_study(runs_dir, spec: StudySpec) -> str:
    """Create the study in the runs folder's storage and start its driver (core/study/driver.py ``start_driver``);
    what to tell the user. Raises ValueError when a study of that name is there already. Slow (imports Optuna): run
    it in a thread."""
    from core.study.driver import start_driver
    from core.study.spec import STUDIES_DIR, load, storage_of

    url = storage_of(runs_dir, spec.name)
    if load(spec.name, url)[0] is not None:
        raise ValueError(f"study {spec.name!r} exists in {url}: give another name (or continue it from the CLI: "
                         f"tui_app.py study {spec.name})")
    load(spec.name, url, spec)
    proc = start_driver(runs_dir, spec.name)
    return (f"study {spec.name} started: {spec.budget_text()}; its driver (pid {proc.pid}) runs in the background, "
            f"log {runs_dir}/{STUDIES_DIR}/{spec.name}.log")
