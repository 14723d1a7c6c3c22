"""Sweeps from the command line: ``--sweep FIELD=V1,V2``, ``--variant "F=V F=V"`` and ``--sweep-name`` for ``train``
and ``queue add`` (core/spec/grid.py does the work; the paper's ``--depths/--shortcuts/--seeds`` of ``queue add``
are sweeps of those fields).

``train`` with several runs creates and trains them one after another in the foreground; ``queue add`` queues
them all. Either way every run is checked first: a bad value names its flag and nothing is created.
"""
from __future__ import annotations

import argparse

from cli.commands import (
    check_data,
    config_from_args,
    create_run,
    milestone_note,
    resume_prog,
    runs_dir_arg,
    store_of,
    train_foreground,
)
from cli.common import EXIT_FAILED, EXIT_OK, SIGNAL_EXIT, CliError, flag
from core.spec.config import ConfigError, RunConfig
from core.spec.grid import describe, expand, parse_ints, parse_shortcuts, parse_sweep, parse_variant
from core.spec.grid import varied_fields as varied
from core.store.runs import names_taken_text

GRID_FLAGS = {"depth": "--depths", "shortcut": "--shortcuts", "seed": "--seeds"}


def add_sweep_flags(parser: argparse.ArgumentParser) -> None:
    """--sweep and --variant (repeatable); --sweep-name is the config field's own flag."""
    g = parser.add_argument_group("sweep (several runs from one command: the product of the swept settings and the "
                                  "variants; see README 'Sweeps')")
    g.add_argument("--sweep", metavar="FIELD=V1,V2", action="append", default=[],
                   help="several values of one setting, e.g. lr=0.1,0.05 or batch_size=64,128 or seed=1-3; "
                        "milestones take alternatives separated by |: milestones='2,4|4,5' (repeatable)")
    g.add_argument("--variant", metavar="'F=V F=V'", action="append", default=[],
                   help="settings that go together, one run set per variant, e.g. --variant 'optimizer=sgd lr=0.1' "
                        "--variant 'optimizer=adam lr=0.001' (repeatable)")


def _dims(args: argparse.Namespace) -> tuple[dict[str, list], dict[str, str]]:
    """field -> values from --depths/--shortcuts/--seeds and --sweep, and field -> the flag that gave it."""
    dims: dict[str, list] = {}
    given: dict[str, str] = {}
    for name, option in GRID_FLAGS.items():
        text = getattr(args, option[2:], None)
        if text is None:
            continue
        try:
            dims[name] = parse_shortcuts(text) if name == "shortcut" else parse_ints(text, name)
        except ValueError as exc:
            raise CliError(f"{option}: {exc}") from None
        given[name] = option
    for text in getattr(args, "sweep", None) or []:
        try:
            name, values = parse_sweep(text)
        except ValueError as exc:
            raise CliError(f"--sweep {text.partition('=')[0].strip()}: {exc}") from None
        if name in given:
            raise CliError(f"--sweep {name}: {name} is swept twice ({given[name]} and --sweep {name})")
        dims[name], given[name] = values, f"--sweep {name}"
    for name, option in given.items():
        if getattr(args, "cfg_" + name, None) is not None:
            raise CliError(f"{option}: give {flag(name)} or {option}, not both")
    return dims, given


def grid_of(args: argparse.Namespace) -> list[RunConfig]:
    """The runs a `train` or `queue add` command describes: the flags' config times the swept settings times the
    variants, each validated. Raises CliError naming the flag at fault (exit 2, nothing created)."""
    dims, given = _dims(args)
    variants = []
    for text in getattr(args, "variant", None) or []:
        try:
            variants.append(parse_variant(text))
        except ValueError as exc:
            raise CliError(f"--variant {text!r}: {exc}") from None
    for v in variants:
        given.update({k: f"--variant {k}" for k in v})
    base = config_from_args(args, validate=not dims and not variants)
    if "milestones" in dims or any("milestones" in v for v in variants):
        args.milestone_note = None           # the runs have the milestones swept, none scaled
    try:
        return expand(base, sweeps=dims, variants=variants)
    except ConfigError as exc:
        raise CliError("; ".join(f"{given.get(k, flag(k))}: {m}" for k, m in exc.errors.items())) from None


def check_all_data(configs: list[RunConfig]) -> None:
    """The data check of every distinct data set of a sweep (once each), before anything is created."""
    from core.data.plan import milestone_error

    seen = set()
    for cfg in configs:
        if problem := milestone_error(cfg):
            raise CliError(f"{flag('milestones')}: {problem} ({describe(cfg, varied(configs))})")
        key = (cfg.dataset, cfg.data_dir, cfg.download, cfg.max_train_images, cfg.max_test_images, cfg.val_split)
        if key not in seen:
            seen.add(key)
            check_data(cfg)


def cmd_train(args: argparse.Namespace) -> int:
    """`train`: one run (cli.commands.cmd_train), or the runs of a sweep one after another."""
    from cli.commands import cmd_train as train_one

    configs = grid_of(args)          # each run checked: nothing is created while one is wrong
    if len(configs) == 1 and not args.sweep and not args.variant:
        return train_one(args, configs[0])
    store = store_of(args, new_runs=True)
    if taken := store.taken_names(configs):
        raise CliError(f"{flag('name')}: {names_taken_text(taken, store.root)}; choose another name or leave "
                       f"{flag('name')} out for a generated one")
    return train_sweep(args, configs, store)


def train_sweep(args: argparse.Namespace, configs: list[RunConfig], store) -> int:
    """Train the runs of a sweep one after another in the foreground. A stop signal ends the sweep (the runs not yet
    started are named); a run that fails does not (exit 1 at the end)."""
    from cli.ddp import launched, on_main

    check_all_data(configs)
    keys = [k for k in varied(configs) if k != "sweep_name"]
    print(f"sweep {configs[0].sweep_name}: {len(configs)} runs, varying {', '.join(keys)}", flush=True)
    signals = getattr(args, "stop_signals", None)
    failed: list[str] = []
    for i, cfg in enumerate(configs):
        print(f"[{i + 1}/{len(configs)}] {describe(cfg, keys)}", flush=True)
        with launched(cfg) as dist:
            run_id = on_main(dist, lambda c=cfg: create_run(store, c, signals, milestone_note(args, c)))
            code = train_foreground(store.get(run_id), store, signals=signals, dist=dist)
        if code in SIGNAL_EXIT.values():
            rest = configs[i + 1:]
            if rest:
                print(f"the sweep stopped: {len(rest)} run{'s' if len(rest) != 1 else ''} not started "
                      f"({'; '.join(describe(c, keys) for c in rest[:4])}{' ...' if len(rest) > 4 else ''})")
            return code
        if code != EXIT_OK:
            failed.append(describe(cfg, keys))
    done = len(configs) - len(failed)
    print(f"sweep {configs[0].sweep_name}: {done} of {len(configs)} runs finished"
          + (f"; failed: {'; '.join(failed)}" if failed else "")
          + f". Report: {resume_prog()} report --sweep {configs[0].sweep_name} {runs_dir_arg(store)}", flush=True)
    return EXIT_FAILED if failed else EXIT_OK
