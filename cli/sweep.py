"""Sweeps from the command line: ``--sweep FIELD=V1,V2``, ``--variant "F=V F=V"`` and ``--sweep-name`` for ``train``
and ``queue add`` (core/spec/grid.py does the work; the paper's ``--depths/--shortcuts/--seeds`` of ``queue add``
are sweeps of those fields).

``train`` with several runs creates and trains them one after another in the foreground; ``queue add`` queues
them all. Either way every run is checked first: a bad value names its flag and nothing is created.
"""
from __future__ import annotations

import argparse
import contextlib

from cli.common import EXIT_FAILED, EXIT_OK, SIGNAL_EXIT, CliError, check_tensorboard, flag
from cli.folder import resume_prog, runs_dir_arg, store_of
from cli.report import sweep_runs
from cli.training import check_data, config_from_args, resume_checked, say_note
from core.spec.config import ConfigError, RunConfig
from core.spec.grid import describe, expand, parse_ints, parse_shortcuts, parse_sweep, parse_variant
from core.spec.grid import varied_fields as varied
from core.spec.limits import memory_estimate
from core.store.runs import RunError, RunInfo, names_taken_text
from core.util.files import write_error


def milestone_note(args: argparse.Namespace, cfg: RunConfig) -> str | None:
    """The milestone-scaling note where it is true of ``cfg``: its milestones are the recipe's, scaled to this run's
    own length. A sweep of milestones (``milestones=2|4``) or of the run's length makes runs it is not true of."""
    note, recipe = getattr(args, "milestone_note", None), getattr(args, "milestone_recipe", None)
    if not note or recipe is None:
        return None
    from core.data.plan import scale_milestones

    scaled, note = scale_milestones(cfg.with_overrides(milestones=recipe.milestones,
                                                       milestone_unit=recipe.milestone_unit), recipe)
    return note if note and scaled.milestones == cfg.milestones else None


GRID_FLAGS = {"depth": "--depths", "shortcut": "--shortcuts", "seed": "--seeds"}


def add_sweep_flags(parser: argparse.ArgumentParser) -> None:
    """--sweep and --variant (repeatable); --sweep-name is the config field's own flag."""
    g = parser.add_argument_group("sweep (several runs from one command: the product of the swept settings and the "
                                  "variants; see docs/sweeps-and-studies.md)")
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
            variant = parse_variant(text)
        except ValueError as exc:
            raise CliError(f"--variant {text!r}: {exc}") from None
        if variant in variants:          # identical runs (as --sweep lr=0.1,0.1 merges its values)
            raise CliError(f"--variant {text!r}: given twice; each variant makes its own runs")
        variants.append(variant)
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
    """`train`: one run (cli.training.cmd_train), or the runs of a sweep one after another."""
    from cli.training import cmd_train as train_one

    configs = grid_of(args)          # each run checked: nothing is created while one is wrong
    if len(configs) == 1 and not args.sweep and not args.variant:
        return train_one(args, configs[0])
    store = store_of(args, new_runs=True)
    if taken := store.taken_names(configs):
        raise CliError(f"{flag('name')}: {names_taken_text(taken, store.root)}; choose another name or leave "
                       f"{flag('name')} out for a generated one")
    return train_sweep(args, configs, store)


def train_sweep(args: argparse.Namespace, configs: list[RunConfig], store) -> int:
    """Record the sweep's plan, create every run of it (queued), then train them one after another in the foreground
    (``finish_runs``). A kill -9 at any moment leaves every run on disk or in the plan: ``resume --sweep NAME``
    finishes the sweep (core/store/sweeps.py)."""
    from cli.ddp import launched, on_main

    check_all_data(configs)
    name = configs[0].sweep_name
    keys = [k for k in varied(configs) if k != "sweep_name"]
    print(f"sweep {name}: {len(configs)} runs, varying {', '.join(keys)}", flush=True)
    signals = getattr(args, "stop_signals", None)
    notes = [milestone_note(args, c) for c in configs]      # true of each run (a sweep of milestones: none)
    with launched(max(configs, key=lambda c: memory_estimate(c)[0]),        # (the largest run must fit)
                  memory=not getattr(args, "ignore_memory", False)) as dist:  # rank 0 makes the runs
        ids = on_main(dist, lambda: create_sweep(store, configs, signals, notes))
    return finish_runs(store, name, list(zip(configs, ids)), keys, signals)


def create_sweep(store, configs: list[RunConfig], signals, notes: list[str | None]) -> list[str]:
    """The plan first (whole or absent), then every run as queued; the run ids, in the plan's order."""
    from core.store import sweeps
    from core.store.runs import with_fixed_data_dir

    if any(c.tensorboard for c in configs):
        check_tensorboard()
    if signals is not None:
        signals.armed = True    # from here on a signal stops the sweep (its runs stay queued) instead of interrupting
    name = configs[0].sweep_name
    try:
        first = sweeps.add_to_plan(store.root, name, [with_fixed_data_dir(c) for c in configs])
    except OSError as exc:
        raise CliError(f"cannot create a run in {store.root}: {write_error(exc, store.root)}", EXIT_FAILED) from None
    ids: dict[int, str] = {}
    try:
        for k, cfg in enumerate(configs):
            try:
                run = store.create(cfg)
            except RunError as exc:
                raise CliError(f"{exc}; the runs made so far stay queued: {finish_command(store, name)}",
                               EXIT_FAILED) from None
            if note := notes[k]:
                say_note(note)
                run.log(note)
            ids[first + k] = run.id
    finally:
        with contextlib.suppress(OSError):
            sweeps.record_runs(store.root, name, ids)
    return list(ids.values())


def finish_command(store, name: str) -> str:
    return f"finish it with: {resume_prog()} resume --sweep {name} {runs_dir_arg(store)}"


def finish_runs(store, name: str, todo: list[tuple[RunConfig, str]], keys: list[str], signals) -> int:
    """Train ``todo`` (config, run id) one after another, each as `resume RUN` would. A stop signal ends the sweep (the
    runs not yet started stay queued, and the command that finishes the sweep is printed); a run that fails does not
    (exit 1 at the end)."""
    from cli.ddp import launched

    resume_args = argparse.Namespace(epochs=None, repair=False, tensorboard=False, stop_signals=signals)
    failed: list[str] = []
    for i, (cfg, run_id) in enumerate(todo):
        print(f"[{i + 1}/{len(todo)}] {describe(cfg, keys)}", flush=True)
        run = store.get(run_id)
        try:
            with launched(cfg, check=False) as dist:
                code = resume_checked(resume_args, store, run, dist)
        except CliError as exc:             # taken by another process meanwhile, or damaged since: the rest goes on
            print(f"run {run_id}: {' '.join(str(exc).split())}", flush=True)
            code = EXIT_FAILED
        if code in SIGNAL_EXIT.values():
            rest = todo[i + 1:]
            if rest:
                print(f"the sweep stopped: {len(rest)} run{'s' if len(rest) != 1 else ''} not started "
                      f"({'; '.join(describe(c, keys) for c, _ in rest[:4])}{' ...' if len(rest) > 4 else ''}); "
                      f"{finish_command(store, name)}", flush=True)
            return code
        if code != EXIT_OK:
            failed.append(describe(cfg, keys) or run_id)
    done = len(todo) - len(failed)
    print(f"sweep {name}: {done} of {len(todo)} runs finished"
          + (f"; failed: {'; '.join(failed)}" if failed else "")
          + f". Report: {resume_prog()} report --sweep {name} {runs_dir_arg(store)}", flush=True)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_runs_sweep(args: argparse.Namespace) -> int:
    """`runs --sweep NAME`: the sweep's runs, the settings that vary as a column, and (as a table) where it stands."""
    import sys

    from cli.tables import render_runs, varied_rows

    store = store_of(args)
    everything = store.list()
    infos = sweep_runs(everything, args.sweep)
    render_runs(varied_rows(infos), args.format, sys.stdout, store.root)
    if args.format == "table":
        print(sweep_footer(store, args.sweep, everything))
    return EXIT_OK


def sweep_footer(store, name: str, infos: list[RunInfo]) -> str:
    """'sweep sw: 2 of 4 runs finished, 2 not started (queued); it is incomplete: finish it with: ...'."""
    from core.store.sweeps import sweep_progress

    progress = sweep_progress(store.root, name, infos)
    text = progress.text()
    if progress.incomplete:
        text += f"; it is incomplete: finish it with: {resume_prog()} resume --sweep {name} {runs_dir_arg(store)}"
    return text


FINISHABLE = ("queued", "stopped", "crashed")      # what a kill or a stop leaves; failed runs are resumed by hand


def cmd_resume_sweep(args: argparse.Namespace) -> int:
    """`resume --sweep NAME`: create the runs the sweep's plan holds and the folder lacks (a kill -9 while the sweep
    was being made), then train every run of it that a kill or a stop left unfinished, in the plan's order."""
    from core.store import sweeps

    if args.run or args.epochs is not None or args.repair or args.tensorboard:
        raise CliError("--sweep: it picks the runs itself; give it without a run id, --epochs, --repair or "
                       "--tensorboard")
    store = store_of(args, new_runs=True)
    infos = store.list()
    progress = sweeps.sweep_progress(store.root, args.sweep, infos)
    if not progress.items:
        sweep_runs(infos, args.sweep)          # names the sweeps there are
    configs = [it.config for it in progress.items if it.config is not None]
    keys = [k for k in varied(configs) if k != "sweep_name"] if len(configs) > 1 else []
    missing = [it for it in progress.items if it.info is None and it.config is not None]
    if missing:
        check_all_data([it.config for it in missing])
    signals = getattr(args, "stop_signals", None)
    if signals is not None:
        signals.armed = True
    todo, skipped = _sweep_todo(store, progress, args.sweep)
    for line in skipped:
        print(line, flush=True)
    print(f"{progress.text()}; {len(todo)} to train", flush=True)
    if not todo:
        return EXIT_OK if progress.complete else EXIT_FAILED
    return finish_runs(store, args.sweep, todo, keys, signals)


def _sweep_todo(store, progress, name: str) -> tuple[list[tuple[RunConfig, str]], list[str]]:
    """(config, run id) of each run to train, creating those never made; and a line for each run left alone."""
    from core.store import sweeps

    todo, skipped, made = [], [], {}
    for it in progress.items:
        if it.info is None:
            if it.config is None:
                skipped.append(f"left alone: plan entry {it.index + 1} is unreadable")
                continue
            try:
                run = store.create(it.config)
            except RunError as exc:
                raise CliError(str(exc), EXIT_FAILED) from None
            made[it.index] = run.id
            todo.append((it.config, run.id))
            continue
        made[it.index] = it.info.id        # (its id recorded in the plan, when a kill came before that)
        if it.info.state in FINISHABLE and it.info.config is not None:
            todo.append((it.info.config, it.info.id))
        elif it.info.state != "finished":
            why = it.info.error or it.info.state
            skipped.append(f"left alone: {it.info.id} is {it.info.state}" + (f" ({why})" if why != it.info.state
                                                                             else ""))
    if made and progress.planned:
        with contextlib.suppress(OSError):
            sweeps.record_runs(store.root, name, made)
    return todo, skipped
