"""RunConfig: the one description of a training run, and its validation.

Every field is documented in core/spec/field_help.py (shown by the CLI's --help and the TUI's form). A RunConfig is
frozen; derive variants with ``dataclasses.replace`` or ``cfg.with_overrides(...)``.

The presets (the papers' recipes) and the sources a config is read from (a TOML file, a preset, overrides) are in
core/spec/presets.py.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, fields
from typing import Any

from core.spec import limits
from core.spec.archs import ARCHS, arch_paper_error, depth_problem, doubling, widths_problem, widths_text
from core.spec.coerce import coerce
from core.util.formatting import model_name, number_text

SCHEMA_VERSION = 1

SHORTCUTS = ("A", "B", "none")
OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw")
SCHEDULES = ("multistep", "cosine", "constant", "plateau")
# he-fan-out: He et al. 2015's normal init in fan-out mode (the papers'); he-fan-in: the same in fan-in mode (the usual
# CIFAR loop's, akamaster/pytorch_resnet_cifar10); torch-default: no init function (what the course code got)
INITS = ("he-fan-out", "he-fan-in", "torch-default")
MILESTONE_UNITS = ("epoch", "iter")
DATASETS = ("cifar10", "cifar100", "synthetic")
NORMALIZATIONS = ("channel", "pixel")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TRISTATE = ("auto", "on", "off")
OOM_POLICIES = ("split", "fail")
# torch.compile: off (eager), default (inductor), reduce-overhead (inductor plus CUDA graphs: one replay per step
# instead of ~200 kernel launches; on a CPU torch skips the graphs and runs the default inductor code)
COMPILE_MODES = ("off", "default", "reduce-overhead")
# what `compile` was before it was a choice (a bool: old config.json files, TOML `compile = true`, `--compile`)
_COMPILE_ALIASES = {True: "default", False: "off", "true": "default", "on": "default", "yes": "default",
                    "1": "default", "false": "off", "no": "off", "0": "off"}

# He et al. 2016, Table 6 (CIFAR-10 test error, %, option A shortcuts). Plain nets have no table entry.
PAPER_ERRORS = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.43, 1202: 7.93}
# The lab report (widths 30/60/90 after a 64-filter stem, shortcut B, batch 64, 164 epochs, /10 at 51 and 75).
LAB_REPORT_ERRORS = {20: 6.89, 56: 6.69, 110: 6.57}


def paper_error(depth: int, shortcut: str, dataset: str = "cifar10") -> float | None:
    """The paper's CIFAR-10 test error (%) for this depth and shortcut, or None where it has none."""
    if dataset != "cifar10" or shortcut != "A":
        return None
    return PAPER_ERRORS.get(depth)


# the runs folder's own files (core/serve/scheduler.py): never a run's name, or no scheduler could serve the folder
RUNS_FOLDER_FILES = ("scheduler.lock", "scheduler.json", "scheduler.log")


@dataclass(frozen=True)
class RunConfig:
    # -- model ------------------------------------------------------------------------------------
    depth: int = 20
    shortcut: str = "A"
    width: int = 16
    widths: tuple[int, ...] = ()       # () in a call: (width, 2 width, 4 width); always three after __post_init__
    stem_width: int = 0
    arch: str = "resnet"
    dropout: float = 0.0
    init: str = "he-fan-out"
    # -- data -------------------------------------------------------------------------------------
    dataset: str = "cifar10"
    data_dir: str = ""
    download: bool = True
    val_split: int = 0
    max_train_images: int = 0
    max_test_images: int = 0
    normalize: str = "pixel"
    augment: bool = True
    # -- optimisation -----------------------------------------------------------------------------
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    # -- schedule ---------------------------------------------------------------------------------
    schedule: str = "multistep"
    milestones: tuple[int, ...] = (32000, 48000)
    milestone_unit: str = "iter"
    lr_factor: float = 0.1
    min_lr: float = 0.0
    plateau_patience: int = 10
    plateau_threshold: float = 0.1
    plateau_cooldown: int = 0
    warmup_iters: int = 0
    error_warmup: str = "auto"
    epochs: int = 164
    iterations: int = 64000
    batch_size: int = 128
    # -- speed ------------------------------------------------------------------------------------
    precision: str = "auto"
    channels_last: str = "auto"
    compile: str = "off"
    on_oom: str = "split"
    micro_batches: int = 1
    sync_bn: bool = False
    # -- run --------------------------------------------------------------------------------------
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    name: str = ""
    sweep_name: str = ""
    log_every: int = 20
    tensorboard: bool = False
    # -- study (core/study: set by `study`, not by hand) ------------------------------------------------
    study: str = ""
    trial: int = -1
    rungs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # the stage widths, derived from ``width`` where not given: a config always holds both, and they agree
        if not self.widths and isinstance(self.width, int) and not isinstance(self.width, bool) and self.width >= 1:
            object.__setattr__(self, "widths", doubling(self.width))

    @property
    def stem(self) -> int:
        """The stem's filters: ``stem_width``, or the first stage's (a WRN's stem is 16 whatever its width)."""
        return 16 if self.arch == "wrn" else (self.stem_width or self.widths[0])

    # ------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        # the fields as they are (all plain values; milestones a list): dataclasses.asdict deep-copies each value,
        # ~0.3 ms a config, which a table of 2,000 runs paid on every refresh (grouping, varied settings)
        d = {name: getattr(self, name) for name in _NAMES}
        d["milestones"] = list(self.milestones)
        d["widths"] = list(self.widths)
        d["rungs"] = list(self.rungs)
        return d

    def to_json(self) -> str:
        return json.dumps({"schema_version": SCHEMA_VERSION, **self.to_dict()}, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> RunConfig:
        """Build from plain data (JSON, TOML, CLI). Unknown keys raise ConfigError when strict."""
        data = dict(data)
        data.pop("schema_version", None)
        names = _NAMES
        unknown = sorted(set(data).difference(names))
        if unknown and strict:
            raise ConfigError({k: f"unknown setting; allowed: {', '.join(sorted(names))}" for k in unknown})
        kwargs = {}
        errors = {}
        for name in _NAMES:       # (dataclasses.fields at each call cost a tenth of reading 10,000 configs)
            if name not in data:
                continue
            try:
                kwargs[name] = _coerce(name, data[name])
            except (TypeError, ValueError) as exc:
                errors[name] = str(exc)
        if errors:
            raise ConfigError(errors)
        if kwargs.get("widths"):      # the stage widths given: width is their first (they never disagree)
            kwargs["width"] = kwargs["widths"][0]
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text), strict=False)

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """This config with some fields replaced (values coerced like from_dict).

        Setting ``epochs`` alone clears ``iterations`` (a length in epochs replaces one in iterations), and
        setting ``milestones`` alone to values that only make sense as epochs switches the unit to epochs. ``width``
        alone sets the stages to w, 2w, 4w; ``widths`` alone sets ``width`` to its first; both must agree.
        """
        overrides = {k: v for k, v in overrides.items() if v is not None}
        _stage_widths(self, overrides)
        if "epochs" in overrides and "iterations" not in overrides:
            overrides["iterations"] = 0
        if "milestones" in overrides and "milestone_unit" not in overrides:
            by_epoch = self.iterations == 0 or overrides.get("iterations") == 0
            overrides["milestone_unit"] = "epoch" if by_epoch else self.milestone_unit
        merged = {**self.to_dict(), **overrides}
        return RunConfig.from_dict(merged)

    # ------------------------------------------------------------------------------------------------
    def validate(self) -> dict[str, str]:  # noqa: C901, PLR0912, PLR0915 (a flat list of independent rules)
        """Field name -> what is wrong and what is allowed. Empty when the config can run (sizes within
        core/spec/limits.py's bounds, so a valid config never fails at start for its size)."""
        e: dict[str, str] = {}
        _choice(e, "arch", self.arch, ARCHS)
        if self.arch in ARCHS and depth_problem(self.arch, self.depth):
            e["depth"] = depth_problem(self.arch, self.depth)
        if not 0 <= self.dropout < 1 or (self.dropout and self.arch != "wrn"):
            e["dropout"] = f"dropout must be in [0, 1) and is for arch wrn only (0 = none), got {self.dropout}"
        _choice(e, "shortcut", self.shortcut, SHORTCUTS)
        if self.width < 1:
            e["width"] = (f"width must be a positive number of filters (16 is the paper's), "
                          f"got {number_text(self.width)}")
        else:
            e.update({k: m for k, m in widths_problem(self.arch, self.widths, self.width, self.stem_width).items()
                      if k not in e})
        _choice(e, "init", self.init, INITS)
        _choice(e, "dataset", self.dataset, DATASETS)
        for name in ("val_split", "max_train_images", "max_test_images"):
            if getattr(self, name) < 0:
                e[name] = f"{name} must be >= 0 (0 = none/all), got {number_text(getattr(self, name))}"
        if self.max_train_images and self.val_split >= self.max_train_images:
            e["val_split"] = (f"val_split ({number_text(self.val_split)}) must be smaller than max_train_images "
                              f"({number_text(self.max_train_images)})")
        _choice(e, "normalize", self.normalize, NORMALIZATIONS)
        _choice(e, "optimizer", self.optimizer, OPTIMIZERS)
        if not self.lr > 0:
            e["lr"] = f"learning rate must be > 0, got {self.lr}"
        if not 0 <= self.momentum < 1:
            e["momentum"] = f"momentum must be in [0, 1), got {self.momentum}"
        if self.weight_decay < 0:
            e["weight_decay"] = f"weight decay must be >= 0, got {self.weight_decay}"
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                e[name] = f"{name} must be in [0, 1), got {number_text(getattr(self, name))}"
        if not self.eps > 0:
            e["eps"] = f"eps must be > 0, got {self.eps}"
        _choice(e, "schedule", self.schedule, SCHEDULES)
        _choice(e, "milestone_unit", self.milestone_unit, MILESTONE_UNITS)
        if not 0 < self.lr_factor < 1:
            e["lr_factor"] = f"lr_factor must be in (0, 1) (0.1 divides by 10), got {self.lr_factor}"
        if self.min_lr < 0 or (self.lr > 0 and self.min_lr >= self.lr):
            e["min_lr"] = f"min_lr must be >= 0 and below lr ({self.lr}), got {self.min_lr}"
        _plateau_problems(self, e)
        if self.warmup_iters < 0:
            e["warmup_iters"] = f"warmup_iters must be >= 0, got {number_text(self.warmup_iters)}"
        _choice(e, "error_warmup", self.error_warmup, TRISTATE)
        if self.epochs < 1 and self.iterations < 1:
            e["epochs"] = f"epochs must be >= 1 (or iterations set), got {number_text(self.epochs)}"
        if self.iterations < 0:
            e["iterations"] = (f"iterations must be >= 0 (0 = train for `epochs`), "
                               f"got {number_text(self.iterations)}")
        if self.batch_size < 1:
            e["batch_size"] = f"batch size must be >= 1, got {number_text(self.batch_size)}"
        if self.schedule == "multistep":
            ms = list(self.milestones)
            unit = "iteration" if self.milestone_unit == "iter" else "epoch"
            end = self.iterations if self.milestone_unit == "iter" and self.iterations else None
            if self.milestone_unit == "epoch" and not self.iterations:
                end = self.epochs
            if any(m < 1 for m in ms):
                e["milestones"] = f"milestones must be positive {unit} numbers, got {ms}"
            elif ms != sorted(set(ms)):
                e["milestones"] = f"milestones must be strictly increasing, got {ms}"
            elif end is not None and ms and ms[-1] >= end:
                e["milestones"] = f"milestones must lie before the end of training ({unit} {end}), got {ms}"
        _choice(e, "precision", self.precision, PRECISIONS)
        _choice(e, "channels_last", self.channels_last, TRISTATE)
        _choice(e, "on_oom", self.on_oom, OOM_POLICIES)
        _choice(e, "compile", self.compile, COMPILE_MODES)
        if not 1 <= self.micro_batches <= max(1, self.batch_size):
            e["micro_batches"] = f"micro_batches must be 1 to batch_size ({self.batch_size}), got {self.micro_batches}"
        if self.sync_bn and self.device in ("cpu", "mps"):
            e["sync_bn"] = "sync_bn needs GPUs (PyTorch's SyncBatchNorm refuses CPU modules)"
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            e["device"] = f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}"
        if self.seed < 0:
            e["seed"] = f"seed must be >= 0, got {number_text(self.seed)}"
        if self.name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", self.name):
            e["name"] = "name may use letters, digits, '.', '_' and '-' (up to 64, not starting with a symbol)"
        elif self.name in RUNS_FOLDER_FILES:
            e["name"] = f"{self.name!r} is a file the runs folder keeps for its scheduler; choose another name"
        if self.sweep_name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", self.sweep_name):
            e["sweep_name"] = ("sweep name may use letters, digits, '.', '_' and '-' (up to 64, not starting with a "
                               "symbol)")
        if self.study and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", self.study):
            e["study"] = "study name may use letters, digits, '.', '_' and '-' (up to 64, not starting with a symbol)"
        if self.trial < -1 or any(r < 1 for r in self.rungs) or list(self.rungs) != sorted(set(self.rungs)):
            e["rungs"] = f"trial must be >= 0 (-1: none), rungs increasing epochs >= 1; got {self.trial}, {self.rungs}"
        if self.log_every < 1:
            e["log_every"] = f"log_every must be >= 1, got {number_text(self.log_every)}"
        for name in _NAMES:    # inf passes "> 0" and nan every "< 0": each float is checked for both
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                e[name] = f"{name} must be a finite number, got {value}"
        limits.check(self, e)
        return e

    # ------------------------------------------------------------------------------------------------
    @property
    def paper_error(self) -> float | None:
        if self.arch != "resnet":
            return arch_paper_error(self.arch, self.depth, self.shortcut, self.width, self.dropout) \
                if self.dataset == "cifar10" else None
        return paper_error(self.depth, self.shortcut, self.dataset)

    def uses_error_warmup(self) -> bool:
        """The paper's ResNet-110 warm-up: on when asked, or on 'auto' for depth >= 110 (He et al. 2016 4.2)."""
        return self.error_warmup == "on" or (self.error_warmup == "auto" and self.depth >= 110)

    def label(self) -> str:
        """A short human description, e.g. 'ResNet-20 A w16 sgd', 'PreAct-164 B w16 sgd', 'WRN-28-10 B d0.3 nesterov'
        (a WRN's width is in its name)."""
        sc = "" if self.shortcut == "none" else f" {self.shortcut}"
        width = "" if self.arch == "wrn" else f" {widths_text(self.widths, self.stem_width)}"
        drop = f" d{self.dropout:g}" if self.dropout else ""
        return f"{model_name(self.depth, self.shortcut, self.arch, self.width)}{sc}{width}{drop} {self.optimizer}"

    def net_name(self) -> str:
        """The net as tables name it: 'ResNet-20', 'ResNet-20 30/60/90', 'ResNet-20 30/60/90 stem 64' (the paper's
        doubling unnamed; a WRN's width is in its name)."""
        name = model_name(self.depth, self.shortcut, self.arch, self.width)
        custom = self.arch != "wrn" and (self.widths != doubling(self.width) or self.stem_width not in (0, self.width))
        return name + (f" {widths_text(self.widths, self.stem_width)}" if custom else "")


class ConfigError(ValueError):
    """Invalid settings: ``errors`` maps each field to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


def _stage_widths(cfg: RunConfig, overrides: dict[str, Any]) -> None:
    """``width`` and ``widths`` in ``overrides`` as with_overrides takes them: width alone re-derives the stages (the
    old ones would contradict it), widths alone sets width (from_dict), both must agree (ConfigError)."""
    if "width" in overrides and "widths" not in overrides:
        overrides["widths"] = ()
    elif "width" in overrides:
        try:
            width, widths = _coerce("width", overrides["width"]), _coerce("widths", overrides["widths"])
        except (TypeError, ValueError):
            return                                    # from_dict names the bad one
        if widths and widths[0] != width:
            raise ConfigError({"widths": f"widths {','.join(map(str, widths))} and width {width} disagree: width "
                                         f"is the first stage's filters; give one of them"})


def _plateau_problems(cfg: RunConfig, e: dict[str, str]) -> None:
    """The plateau schedule's settings, and the validation split it watches."""
    if cfg.plateau_patience < 1:
        e["plateau_patience"] = f"plateau_patience must be >= 1 epoch, got {number_text(cfg.plateau_patience)}"
    if cfg.plateau_cooldown < 0:
        e["plateau_cooldown"] = f"plateau_cooldown must be >= 0 epochs, got {number_text(cfg.plateau_cooldown)}"
    if not cfg.plateau_threshold >= 0:
        e["plateau_threshold"] = f"plateau_threshold must be >= 0 (error points), got {cfg.plateau_threshold}"
    if cfg.schedule == "plateau" and cfg.val_split < 1:
        e.setdefault("schedule", "schedule plateau decays when the validation error stops improving, so it needs "
                                 "held-out images: set val_split (e.g. 5000), or choose multistep or cosine")


def _choice(e: dict, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        e[name] = f"unknown {name} {value!r}; allowed: {', '.join(allowed)}"


_FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}
_NAMES = tuple(_FIELD_TYPES)        # the settings' names, in order


def _coerce(name: str, value: Any) -> Any:
    """Turn JSON/TOML/CLI text into the field's type, with a message naming what was expected."""
    if name == "compile" and isinstance(value, bool):
        return _COMPILE_ALIASES[value]
    if name == "compile" and isinstance(value, str):
        return _COMPILE_ALIASES.get(value.strip().lower(), value.strip())
    return coerce(_FIELD_TYPES[name], value)
