"""The new-run form's texts: the line that sums up what a launch creates, and the help for the focused field.

Plain functions of the form's state (no widget queries), so the form only puts their result on screen.
"""
from __future__ import annotations

from rich.text import Text

from core.data.plan import planned_steps
from core.spec.archs import depth_help, dropout_help
from core.spec.config import RunConfig
from core.spec.field_help import FIELD_HELP
from core.spec.grid import describe, varied_fields
from core.spec.limits import memory_estimate
from core.spec.presets import PRESET_HELP
from core.store.estimate import Estimate
from core.util.formatting import duration, mem

from .study_fields import STUDY_HELP

VARIANTS_HELP = ("Settings that go together, one set of runs each, separated by ';' (e.g. optimizer=sgd lr=0.1; "
                 "optimizer=adam lr=0.001); every field also takes several values: 64,128, or 2,4 | 4,5 in milestones")
WHERE_HELP = ("queue: the scheduler of this runs folder trains the runs in their own processes, as many at once as "
              "there are device slots (every GPU), and keeps going after you quit or ssh drops (g shows the queue). "
              "this app: trains in a thread of this app, one run after another (quick CPU tries); quitting asks")


def grid_labels(configs: list[RunConfig], shown: int = 6) -> str:
    """The runs a launch creates, in order; runs that differ only in their seed are named once with their seeds
    ('ResNet-20 A w16 sgd x3 (seeds 1, 2, 3)', not the same label three times)."""
    groups: dict[str, list[int]] = {}
    keys = [k for k in varied_fields(configs) if k not in ("depth", "shortcut", "width", "optimizer", "seed")]
    for cfg in configs:      # a sweep's runs say what they vary: 'ResNet-20 A w16 sgd lr=0.05 batch_size=64'
        label = cfg.label() + (f" {describe(cfg, keys)}" if keys else "")
        groups.setdefault(label, []).append(cfg.seed)
    parts = [label if len(seeds) == 1 else f"{label} x{len(seeds)} (seeds {', '.join(map(str, seeds))})"
             for label, seeds in groups.items()]
    return ", ".join(parts[:shown]) + (" ..." if len(parts) > shown else "")


def time_text(eta: Estimate | None, runs: int, kind: str) -> str:
    """' · about 12m30s (pace of 3 past cpu runs)', in all for several runs; what is missing when there is no
    past run to measure from."""
    if eta is None:
        return f" · time: estimated once a run has trained on the {kind} here"
    return f" · about {duration(eta.seconds)}{' in all' if runs > 1 else ''} ({eta.basis})"


def summary_text(configs: list[RunConfig], errors: dict[str, str], where: str, eta: Estimate | None = None,
                 kind: str = "cpu", scaled: str | None = None) -> Text:
    """What ctrl+s would do now: the fields to fix, or the runs it creates, how long each is and how long they
    take (``eta``: core.store.estimate, None when no past run on ``kind`` sets a pace); ``scaled``: what the form
    did to the recipe's milestones ('milestones scaled from 51,75 to 2,3 ...')."""
    if errors:
        return Text(f"✗ {len(errors)} field(s) to fix before launching: " + ", ".join(errors), style="bold red")
    labels = grid_labels(configs)
    ipe, total = planned_steps(configs[0])
    epochs = total / ipe
    length = f" · about {total:,} iterations ({ipe:,} per epoch, {epochs:,.{0 if epochs >= 10 else 1}f} epochs)"
    if len(configs) > 1:
        steps = [planned_steps(c)[1] for c in configs]
        if len(set(steps)) > 1:
            length = f" · {sum(steps):,} iterations in all ({min(steps):,} to {max(steps):,} per run)"
    if where == "queue":
        text = f"✓ queues {len(configs)} run(s) for the scheduler: {labels}"
    elif len(configs) > 1:
        text = f"✓ launches {len(configs)} run(s), one after another: {labels}"
    else:
        text = f"✓ launches {labels}"
    if scaled:
        length += f" · {scaled}"
    return Text(text + length + time_text(eta, len(configs), kind) + memory_text(configs), style="green")


def scaled_text(recipe: RunConfig, scaled: tuple | None, noted: bool) -> str | None:
    """'milestones scaled from 51,75 to 2,3 for this run's length' for the summary while the field holds the
    recipe's milestones scaled (``noted``: the form's note says so)."""
    if scaled is None or not noted:
        return None
    old, new = (",".join(map(str, ms)) for ms in (recipe.milestones, scaled))
    return f"milestones scaled from {old} to {new or 'none'} for this run's length"


def field_help(name: str, arch: str = "resnet") -> str:
    """A field's help; depth and dropout say what the architecture chosen now accepts (6n+2, 9n+2, 6n+4; dropout
    for wrn only)."""
    if name == "depth":
        return depth_help(arch)
    if name == "dropout":
        return dropout_help(arch)
    return STUDY_HELP.get(name) or FIELD_HELP.get(name, "")


BIG_MEMORY = 16 * 2 ** 30      # more than many GPUs have free: say what happens when a device runs out


def memory_text(configs: list[RunConfig]) -> str:
    """' · memory up to ~4.1 GiB' (' (32 images a micro-batch)' when split) for the largest of these runs
    (core/spec/limits.py ``memory_estimate``), ' · memory ~3.4 GiB (batch_size=64) to ~6.4 GiB (batch_size=128)' where
    they differ, and for one past BIG_MEMORY what happens on a device that has less."""
    sizes = [(memory_estimate(c), c) for c in configs]
    (nbytes, images), big = max(sizes, key=lambda e: e[0][0])
    (least, _), small = min(sizes, key=lambda e: e[0][0])
    text = f" · memory up to ~{mem(nbytes)}" + (f" ({images} images a micro-batch)" if images < big.batch_size else "")
    if least < nbytes:      # what the runs weigh against each other, e.g. ResNet-110 at batch 64 and at 128
        keys = [k for k in varied_fields(configs) if k not in ("seed", "sweep_name")]
        text = f" · memory ~{mem(least)} ({describe(small, keys)}) to ~{mem(nbytes)} ({describe(big, keys)})" + (
            f", {images} images a micro-batch" if images < big.batch_size else "")
    if nbytes > BIG_MEMORY:
        text += (": on a device with less, the run splits its batch into micro-batches (on_oom split)"
                 if big.on_oom == "split" else ": set micro_batches for a device with less")
    return text


def focus_help_text(widget_id: str, preset: str, errors: dict[str, str], notes: dict[str, str],
                    arch: str = "resnet") -> Text | str:
    """The help under the form for the field ``widget_id`` (``f-<name>``, a shortcut box, preset or where), with its
    error or note as the field holds it now."""
    name = "shortcut" if widget_id.startswith("f-shortcut") else widget_id.removeprefix("f-")
    preset_help = PRESET_HELP.get(preset, "your own settings")
    help_text = field_help(name, arch) or {"preset": f"{preset_help}. A preset fills the settings it defines; edit "
                                                   "any field afterwards", "where": WHERE_HELP,
                                                   "f-variants": VARIANTS_HELP}.get(widget_id, "")
    if name in errors or name in notes:
        help_text = f"{help_text}  ({errors.get(name) or notes.get(name)})"
    if not help_text:
        return ""
    return Text.assemble((f"{name}: ", "bold"), help_text)
