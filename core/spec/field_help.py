"""What each run setting means (``FIELD_HELP``: the form's help, ``train --help``), how the form and the
detail screen group them (``GROUPS``), and the one table of settings (``SETTINGS``) that both the command line's
flags (cli/main.py ``add_config_flags``) and the form's fields (screens/widgets/form_fields.py) are made from: each
setting's flag, kind (on/off, a choice and its values, a number, a list, text), value name and help, so the CLI and
the form cannot disagree on a setting."""
from __future__ import annotations

from dataclasses import dataclass, fields

from core.spec import config as C
from core.spec.config import RunConfig

FIELD_HELP: dict[str, str] = {
    "depth": ("Network depth: resnet and preact 6n+2 (20 ... 1202 in the paper), preact-bottleneck 9n+2 (164, 1001), "
              "wrn 6n+4 (16, 28, 40); n blocks per stage"),
    "arch": ("resnet: He et al. 2016 (Table 6); preact: pre-activation BN-ReLU-conv basic blocks, preact-bottleneck: "
             "with bottleneck blocks (He et al. 2016b); wrn: wide ResNet, k = width/16 (Zagoruyko & Komodakis 2016)"),
    "dropout": "wrn only: dropout between a block's two convolutions (0 = none; 0.3 in the WRN paper's best run)",
    "shortcut": ("A: identity, zero-padded where the shape changes (paper's CIFAR choice); B: 1x1 projection there; "
                 "none: plain net"),
    "width": "Filters in the first stage (16 in the paper; stages use w, 2w, 4w); the short form of widths",
    "widths": ("Filters of each of the three stages, e.g. 30,60,90 (the lab report's) or 64,128,256 (the course "
               "code's); empty = width, 2 width, 4 width. resnet and preact; sweeps: 16,32,64 | 30,60,90"),
    "stem_width": ("Filters of the 3x3 stem convolution (0 = the first stage's; the course code's stem had 64). "
                   "resnet and preact"),
    "init": ("Initialisation: he-fan-out (He et al. 2015 normal, fan-out: the paper's), he-fan-in (the same in "
             "fan-in mode: the usual CIFAR loop's) or torch-default (PyTorch's own: the course code's)"),
    "dataset": "cifar10, cifar100, or synthetic (learnable patterns, no download; for demos)",
    "data_dir": ("Folder holding cifar-10-batches-py (or the archive); empty = $RESLAB_DATA or data/. A run "
                 "keeps it as an absolute path (resumed from anywhere, it reads the same data)"),
    "download": "Download the official archive when the data set is missing",
    "val_split": "Training images held out for validation (the paper's analysis used 5000: a 45k/5k split); 0 = none",
    "max_train_images": "Use a stratified subset of this many training images (0 = all)",
    "max_test_images": "Use a stratified subset of this many test images (0 = all)",
    "normalize": "pixel: subtract the per-pixel mean image (He et al. 2016); channel: per-channel mean/std",
    "augment": "4-pixel zero padding, random 32x32 crop and horizontal flip (the paper's augmentation)",
    "optimizer": "sgd (with momentum), nesterov, adam or adamw",
    "lr": "Base learning rate (0.1 in the paper for SGD; ~1e-3 is usual for Adam)",
    "momentum": "SGD momentum (0.9 in the paper)",
    "weight_decay": "L2 weight decay (1e-4 in the paper); decoupled for adamw",
    "beta1": "Adam/AdamW first-moment decay",
    "beta2": "Adam/AdamW second-moment decay",
    "eps": "Adam/AdamW epsilon",
    "schedule": ("multistep (divide at milestones), cosine (to min_lr), constant, or plateau (divide by 1/lr_factor "
                 "when the validation error stops improving; needs val_split)"),
    "milestones": "Where multistep divides the rate, e.g. 32000,48000 (iterations) or 51,75 (epochs)",
    "milestone_unit": "Unit of milestones: iter or epoch",
    "lr_factor": "Factor at each multistep milestone and each plateau decay (0.1 = divide by 10)",
    "min_lr": "Floor of the cosine and plateau schedules",
    "plateau_patience": ("plateau: decay after this many epochs in a row whose validation error is not "
                         "plateau_threshold below the best so far"),
    "plateau_threshold": "plateau: how far (error points, %) below the best a validation error must be to count",
    "plateau_cooldown": "plateau: epochs after a decay before epochs without improvement count again",
    "warmup_iters": "Linear warm-up from ~0 to lr over this many iterations (0 = none; at most a tenth of the run)",
    "error_warmup": "Paper's ResNet-110 warm-up: 0.1x lr until training error < 80% (auto: depth >= 110)",
    "epochs": "Training length in epochs (used when iterations is 0)",
    "iterations": "Training length in iterations (the paper: 64000); 0 = use epochs",
    "batch_size": "Images per iteration, all processes together (128 in the paper, 64 in the lab report)",
    "precision": "auto (bf16 autocast on GPUs that support it, else fp32), fp32, bf16 or fp16 (with loss scaling)",
    "channels_last": "Memory format: auto (GPU: a few steps timed in both formats; CPU: a ~2 s probe on small batches; "
                     "measured once per machine, device and model, then cached), on or off",
    "compile": ("torch.compile the training step: off, default (inductor kernels) or reduce-overhead (also CUDA "
                "graphs: one replay per step, not ~200 kernel launches; a CPU skips the graphs, as default). "
                "Compiled before the first step (status: compiling), its time reported apart"),
    "on_oom": "On CUDA out-of-memory: split (micro-batches, same effective batch) or fail",
    "micro_batches": ("Cut each batch into N slices with gradient accumulation: less memory, the same step, but "
                      "batch norm sees batch_size/N images at a time. P torchrun processes = --micro-batches P"),
    "sync_bn": ("torchrun on GPUs: batch norm over all processes' images at once, as the paper's one batch "
                "(off: each process normalises its own share, like --micro-batches P). Not on the CPU"),
    "device": "auto (first CUDA GPU, else CPU), cpu or cuda:N",
    "seed": "Seed of the model initialisation, shuffling and augmentation",
    "deterministic": "Deterministic algorithms (bitwise-repeatable on the CPU; slower on GPU)",
    "name": "Run name (becomes the run id); empty = generated, e.g. r20-A-sgd-20261127-214501",
    "sweep_name": ("The sweep this run belongs to (runs --sweep NAME, report --sweep NAME); a launch of several runs "
                   "gets one generated when empty, e.g. lr-bs-1202-1530. Does not change what a run learns"),
    "log_every": "Write a point to steps.jsonl every this many iterations",
    "tensorboard": "Also write TensorBoard event files into the run's tensorboard/ folder (tensorboard --logdir runs/)",
    "study": "The study (core/study) this run is a trial of; empty = none",
    "trial": "Its trial number in the study (Optuna's, from 0); -1 = not a trial",
    "rungs": ("Epochs at which a study's trial pauses for the pruner's decision (ASHA rungs): it continues, or stops "
              "with its checkpoint and is resumed if promoted later"),
}

_NAMES = {f.name for f in fields(RunConfig)}
assert set(FIELD_HELP) == _NAMES, "every RunConfig field needs help text"

GROUPS: dict[str, tuple[str, ...]] = {
    "model": ("arch", "depth", "shortcut", "width", "widths", "stem_width", "dropout", "init"),
    "optimisation": ("optimizer", "lr", "momentum", "weight_decay", "beta1", "beta2", "eps"),
    "schedule": ("schedule", "milestones", "milestone_unit", "lr_factor", "min_lr", "plateau_patience",
                 "plateau_threshold", "plateau_cooldown", "warmup_iters", "error_warmup",
                 "epochs", "iterations", "batch_size"),
    "data": ("dataset", "data_dir", "download", "val_split", "max_train_images", "max_test_images", "normalize",
             "augment"),
    "speed": ("precision", "channels_last", "compile", "on_oom", "micro_batches", "sync_bn"),
    "run": ("device", "seed", "deterministic", "name", "sweep_name", "log_every", "tensorboard"),
}
# set by the `study` command for its trials (no flag, no form field; shown by `show` and the study screen)
STUDY_FIELDS = ("study", "trial", "rungs")
FORM_FIELDS = tuple(name for names in GROUPS.values() for name in names)     # every setting but a study's own
assert sorted(sum(GROUPS.values(), STUDY_FIELDS)) == sorted(_NAMES), "every RunConfig field in one group"

# What choosing a preset in the form sets: its whole recipe (model, optimisation and schedule settings, and how the
# images are normalised and augmented), so that the form shows exactly that preset and nothing of the one before.
# The data set and its folder, speed, device and run settings stay as the user set them.
RECIPE = GROUPS["model"] + GROUPS["optimisation"] + GROUPS["schedule"] + ("normalize", "augment")
# One launch's own settings: never remembered for the next form, cleared after a launch (the form's variants too)
PER_LAUNCH = ("name", "sweep_name", "seed")

# The allowed values of each choice setting (RunConfig.validate checks them): the CLI's metavar, the form's Choice
CHOICES: dict[str, tuple[str, ...]] = {
    "arch": C.ARCHS, "shortcut": C.SHORTCUTS, "init": C.INITS, "dataset": C.DATASETS, "normalize": C.NORMALIZATIONS,
    "optimizer": C.OPTIMIZERS, "schedule": C.SCHEDULES, "milestone_unit": C.MILESTONE_UNITS,
    "error_warmup": C.TRISTATE, "precision": C.PRECISIONS, "channels_last": C.TRISTATE, "on_oom": C.OOM_POLICIES,
    "compile": C.COMPILE_MODES,
}
# What a value of the other settings looks like (the CLI's metavar)
VALUE_NAMES = {"milestones": "M1,M2", "widths": "W1,W2,W3", "rungs": "E1,E2", "device": "auto|cpu|cuda:N",
               "name": "NAME", "sweep_name": "NAME", "study": "NAME", "data_dir": "DIR", "int": "N", "float": "X"}
_TYPES = {f.name: f.type for f in fields(RunConfig)}
_DEFAULTS = RunConfig()


@dataclass(frozen=True)
class Setting:
    """One RunConfig field as the CLI and the form offer it."""

    name: str
    group: str                  # its GROUPS entry; "study" for the study's own (no flag, no form field)
    kind: str                   # bool, choice, int, float, list (comma-separated numbers) or text
    help: str
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """batch_size -> --batch-size."""
        return "--" + self.name.replace("_", "-")

    @property
    def value_name(self) -> str:
        """The CLI's metavar: the choices (a|b|c), or what a value looks like."""
        if self.choices:
            return "|".join(self.choices)
        return VALUE_NAMES.get(self.name) or VALUE_NAMES.get(self.kind, "VALUE")

    @property
    def default_text(self) -> str:
        """The default value as a person types it (off, empty, none, 32000,48000)."""
        value = getattr(_DEFAULTS, self.name)
        if isinstance(value, tuple):
            return ",".join(map(str, value)) or "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        return str(value) if value != "" else "empty"


def _kind(name: str) -> str:
    if name in CHOICES:
        return "choice"
    return {"bool": "bool", "int": "int", "float": "float", "str": "text"}.get(_TYPES[name], "list")


SETTINGS: dict[str, Setting] = {
    name: Setting(name, group, _kind(name), FIELD_HELP[name], CHOICES.get(name, ()))
    for group, names in {**GROUPS, "study": STUDY_FIELDS}.items() for name in names}
