"""What a study is, and where it lives.

A study's settings (``StudySpec``: fixed settings, space, budget, sampler, pruner, objectives) are written once, when
it is created, into the Optuna study's user attributes (``reslab``), so any process that opens the storage, on any
machine, continues the same study. The storage is SQLite in the runs folder by default (``<runs>/studies.db``: one
file for every study of the folder, nothing to start) or any Optuna storage URL (``postgresql://``, ``mysql://``), or
``journal:PATH`` for Optuna's journal file (JournalFileBackend), which several processes may share.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.spec.config import RunConfig
from core.study.asha import rung_epochs
from core.study.space import Dimension, check_against, parse_space

DB_FILE = "studies.db"
STUDIES_DIR = ".studies"                   # <runs>/.studies/NAME.json (its storage), NAME.log (a driver's output)
OBJECTIVES = ("val_err", "train_time")     # minimised: validation error (%) and training seconds
SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("asha", "median", "none")
ATTR = "reslab"                            # the study's user attribute holding its StudySpec
NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"


@dataclass(frozen=True)
class StudySpec:
    name: str
    base: dict                               # the fixed settings (RunConfig.to_dict) every trial starts from
    space: list[str]                         # the --space texts
    trials: int
    sampler: str = "tpe"
    pruner: str = "asha"
    min_epochs: int = 1
    eta: int = 3
    objectives: list[str] = field(default_factory=lambda: ["val_err"])
    sampler_seed: int | None = None

    @property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.base, strict=False)

    @property
    def dims(self) -> list[Dimension]:
        return parse_space(self.space)

    @property
    def epochs(self) -> int:
        return self.config.epochs

    def rungs(self) -> tuple[int, ...]:
        """Epochs a trial pauses at for the pruner: ASHA's rungs, every epoch from --min-epochs for the median rule."""
        if self.pruner == "asha":
            return rung_epochs(self.min_epochs, self.eta, self.epochs)
        if self.pruner == "median":
            return tuple(range(max(1, self.min_epochs), self.epochs))
        return ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySpec:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def budget_text(self) -> str:
        rungs = ", ".join(map(str, self.rungs())) or "none"
        trials = f"{self.trials} trial{'s' if self.trials != 1 else ''}"
        return (f"{trials} of up to {self.epochs} epochs, sampler {self.sampler}, pruner {self.pruner}"
                + (f" (min {self.min_epochs} epochs, eta {self.eta}; rungs at epochs {rungs})"
                   if self.pruner == "asha" else ""))


def problems(spec: StudySpec) -> dict[str, str]:
    """flag -> what is wrong, for a new study (the space itself is checked by core/study/space.py)."""
    e: dict[str, str] = {}
    if not re.fullmatch(NAME_RE, spec.name) or spec.name in ("show", "confirm"):
        e["NAME"] = ("a study name uses letters, digits, '.', '_' and '-' (up to 64, not starting with a symbol; "
                     "not show or confirm)")
    if spec.trials < 1:
        e["--trials"] = f"must be 1 or more, got {spec.trials}"
    if spec.sampler not in SAMPLERS:
        e["--sampler"] = f"unknown sampler {spec.sampler!r}; allowed: {', '.join(SAMPLERS)}"
    if spec.pruner not in PRUNERS:
        e["--pruner"] = f"unknown pruner {spec.pruner!r}; allowed: {', '.join(PRUNERS)}"
    if spec.min_epochs < 1:
        e["--min-epochs"] = f"must be 1 or more, got {spec.min_epochs}"
    if spec.eta < 2:
        e["--eta"] = f"must be 2 or more (3 keeps the top third at each rung), got {spec.eta}"
    bad = [o for o in spec.objectives if o not in OBJECTIVES]
    if bad or not 1 <= len(spec.objectives) <= 2 or len(set(spec.objectives)) != len(spec.objectives):
        e["--objective"] = f"one or two of {', '.join(OBJECTIVES)}, each once; got {', '.join(spec.objectives)}"
    cfg = spec.config
    if cfg.val_split < 1:
        e["--val-split"] = ("a study measures its objective on images held out of the training set, never on the "
                            "test set: give --val-split N (e.g. 5000, or a tenth of --max-train-images)")
    if cfg.iterations:
        e["--epochs"] = "a study's budget is in epochs (its rungs are epochs): give --epochs N, not --iterations"
    if spec.sampler == "grid" and any(not d.choices for d in spec.dims):
        e["--sampler"] = "grid takes choices only (FIELD=A,B,C); use tpe or random for ranges"
    if spec.pruner != "none" and "val_err" not in spec.objectives:
        e["--pruner"] = "the pruners compare validation errors: add --objective val_err, or --pruner none"
    if spec.pruner == "median" and len(spec.objectives) > 1:
        e["--pruner"] = "median compares one objective; use asha (it ranks by val_err) or none with two objectives"
    return e


def new_spec(name: str, base: RunConfig, space: list[str], trials: int = 20, sampler: str = "tpe",
             pruner: str = "asha", min_epochs: int = 1, eta: int = 3, objectives: list[str] | None = None,
             sampler_seed: int | None = None) -> tuple[StudySpec | None, dict[str, str]]:
    """A new study's StudySpec and flag -> what is wrong ({} when nothing): the CLI's check and the form's."""
    try:
        check_against(base, parse_space(space))
    except ValueError as exc:
        return None, {"--space": str(exc)}
    spec = StudySpec(name=name, base=base.to_dict(), space=list(space), trials=trials, sampler=sampler,
                     pruner=pruner, min_epochs=min_epochs, eta=eta, objectives=list(objectives or ["val_err"]),
                     sampler_seed=sampler_seed)
    errors = problems(spec)
    return (None if errors else spec), errors


def storage_url(runs_dir: Path, given: str | None) -> str:
    """The storage's URL as given, else the runs folder's SQLite file."""
    return given or f"sqlite:///{(Path(runs_dir) / DB_FILE).resolve()}"


def remember_storage(runs_dir: Path, name: str, url: str) -> None:
    """Note where study ``name`` lives (``<runs>/.studies/NAME.json``, private: a URL may hold a password), so the
    TUI's study screen opens a study kept in another storage than the folder's studies.db."""
    from core.store.settings import write_json

    path = Path(runs_dir) / STUDIES_DIR / f"{name}.json"
    if write_json(path, {"storage": url}):
        with contextlib.suppress(OSError):
            path.chmod(0o600)


def storage_of(runs_dir: Path, name: str) -> str:
    """Where study ``name`` of this runs folder lives: as remembered, else the folder's studies.db."""
    from core.store.settings import read_json

    url = read_json(Path(runs_dir) / STUDIES_DIR / f"{name}.json").get("storage")
    return url if isinstance(url, str) and url else storage_url(runs_dir, None)


def quiet_optuna():
    """Optuna without its INFO lines and its experimental-feature warnings (multivariate TPE, metric names)."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def open_storage(url: str):
    """An Optuna storage for ``url``: ``journal:PATH`` (or a path ending .log/.journal) is a journal file; SQLite
    waits for the file's lock (several processes share it) instead of failing at once."""
    optuna = quiet_optuna()

    path = url.removeprefix("journal:") if url.startswith("journal:") else None
    if path is None and "://" not in url and url.endswith((".log", ".journal")):
        path = url
    if path is not None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(Path(path).expanduser().resolve())))
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def sampler_for(spec: StudySpec):
    import optuna

    seed = spec.sampler_seed
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        return optuna.samplers.GridSampler({d.field: list(d.distribution().choices) for d in spec.dims}, seed=seed)
    if spec.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if spec.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=len(spec.dims) > 1)


def load(name: str, url: str, spec: StudySpec | None = None):
    """The Optuna study ``name`` (created from ``spec`` when given and missing) and its StudySpec; (None, None) when
    it does not exist and no spec is given."""
    import optuna

    storage = open_storage(url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        if spec is None:
            return None, None
        study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                    directions=["minimize"] * len(spec.objectives), sampler=sampler_for(spec))
        if ATTR not in study.user_attrs:
            study.set_user_attr(ATTR, spec.to_dict())
            study.set_metric_names(list(spec.objectives))
    stored = optuna.load_study(study_name=name, storage=storage).user_attrs.get(ATTR)
    if stored is None:
        raise ValueError(f"study {name!r} in {url} was not made by ResLab (no {ATTR!r} user attribute)")
    found = StudySpec.from_dict(stored)
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler_for(found))
    return study, found
