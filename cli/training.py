"""The training commands: ``train``, ``resume`` and ``stop`` (a sweep's are cli/sweep.py's, the queue's cli/queue.py's).

Bad input is caught before anything is written: the config is assembled and validated (``config_from_args``), and
the data set is loaded once (downloaded if allowed), before ``RunStore.create`` makes the run folder. A run trains in
this process's main thread (``train_foreground``): SIGINT/SIGTERM stop it with a checkpoint and print the command
that resumes it.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, CliError, StopSignals, check_tensorboard, flag
from cli.folder import get_run, resume_prog, runs_dir_arg, store_of
from core.spec.config import ConfigError, RunConfig
from core.spec.presets import config_from_sources
from core.store.rules import needs_repair, resume_refusal, stop_refusal, waiting_in_slurm
from core.store.runs import ACTIVE, Run, RunError, RunLockedError, RunStore, extend_run, names_taken_text
from core.util.files import write_error
from core.util.formatting import duration, epoch_count, pct


# -- configuration -----------------------------------------------------------------------------------------------------
def config_from_args(args: argparse.Namespace, validate: bool = True) -> RunConfig:
    """--preset, then --config FILE, then flags; validated (unless a sweep validates each of its runs). Raises
    CliError naming the flag or file at fault."""
    given = {f.name: getattr(args, "cfg_" + f.name) for f in fields(RunConfig)
             if getattr(args, "cfg_" + f.name, None) is not None}
    refuse_blank({"preset": args.preset, "config": args.config, **given})
    if given.get("data_dir"):
        given["data_dir"] = str(Path(given["data_dir"]).expanduser().resolve())  # resumable from any directory
    try:
        cfg = config_from_sources(args.preset, args.config, **given)
        if "milestones" not in given:        # a shortened recipe: its milestones at the same fractions of the run
            from core.data.plan import scale_milestones

            args.milestone_recipe = config_from_sources(args.preset, args.config)
            cfg, args.milestone_note = scale_milestones(cfg, args.milestone_recipe)
    except ConfigError as exc:
        raise CliError(_config_errors(exc.errors, given, args.preset, args.config)) from None
    errors = cfg.validate() if validate else {}
    if errors:
        raise CliError(_config_errors(errors, given, args.preset, args.config))
    from core.data.plan import warmup_error

    if "warmup_iters" in given and (why := warmup_error(cfg)):   # a preset's warm-up is shortened on short runs
        raise CliError(f"--warmup-iters: {why}")
    return cfg


def refuse_blank(values: dict[str, Any]) -> None:
    """A flag given as empty text ('--name ""', '--milestones ""') or with spaces around its value ('cpu ') is bad
    input: it was never silently the default, nor trimmed."""
    for name, value in values.items():
        if isinstance(value, str) and value != value.strip() or value == "":
            what = "empty; give a value or leave the flag out" if not value.strip() else \
                f"{value!r} has spaces around it; remove them"
            raise CliError(f"{flag(name)}: {what}")


def _config_errors(errors: dict[str, str], given: dict[str, Any], preset: str | None, toml: str | None) -> str:
    """'--depth: depth must be 6n+2 ...' for a flag, 'depth (from run.toml): ...' for a value from the file."""
    parts = []
    for name, message in errors.items():
        if name in given or name == "config" or (name == "preset" and preset):
            where = flag(name)
        elif toml and toml not in message:
            where = f"{name} (from {toml})"
        else:
            where = name
        parts.append(f"{where}: {message}")
    return "; ".join(parts)


def check_data(cfg: RunConfig) -> None:
    """core.data.cifar.check_data (the form's check too), a bad data folder as bad input (exit 2, nothing created);
    and milestones that lie past the run's end (known once the data's size is: core.data.plan.milestone_error)."""
    from core.data.cifar import check_data as check
    from core.data.datasets import DataError
    from core.data.plan import milestone_error

    if problem := milestone_error(cfg):
        raise CliError(f"{flag('milestones')}: {problem}")
    try:
        check(cfg)
    except DataError as exc:
        raise CliError(f"{flag('data_dir')}: {exc}") from None


# -- train / resume ----------------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace, cfg: RunConfig | None = None) -> int:
    """Train one run (``cfg``: already assembled from the flags by cli/sweep.py)."""
    from cli.ddp import launched, on_main

    cfg = cfg or config_from_args(args)
    store = store_of(args, new_runs=True)
    signals = getattr(args, "stop_signals", None)
    if taken := store.taken_names([cfg]):
        raise CliError(f"{flag('name')}: {names_taken_text(taken, store.root)}; choose another name, leave "
                       f"{flag('name')} out for a generated one, or resume it")
    with launched(cfg, memory=not getattr(args, "ignore_memory", False)) as dist:  # rank 0 creates, all train
        note = __import__("cli.sweep").sweep.milestone_note(args, cfg)      # true of this run
        return train_foreground(store.get(on_main(dist, lambda: create_run(store, cfg, signals, note))), store,
                                signals=signals, dist=dist, on_end=getattr(args, "on_end", None))


def create_run(store: RunStore, cfg: RunConfig, signals: StopSignals | None, note: str | None = None) -> str:
    """Check the data (and --tensorboard), then make the run's folder (``note`` in its events.log); its id. Raises
    CliError."""
    check_data(cfg)
    if cfg.tensorboard:
        check_tensorboard()
    if signals is not None:
        signals.armed = True    # from here on a signal stops the run instead of interrupting its creation
    try:
        run = store.create(cfg)
    except RunError as exc:
        raise CliError(str(exc)) from None
    if note:
        say_note(note)
        run.log(note)                 # events.log says why its milestones are not the recipe's
    return run.id


_SAID: set[str] = set()


def say_note(note: str) -> None:
    """The milestone-scaling note, once per command (a sweep makes many runs), once the runs are sure to be made:
    on stderr, so stdout still starts with the run id; a refused command says only why it was refused."""
    if note not in _SAID:
        _SAID.add(note)
        print(f"note: {note}", file=sys.stderr, flush=True)


def cmd_resume(args: argparse.Namespace) -> int:
    from cli.ddp import launched
    from core.train.distributed import Dist

    if not args.run:       # (`resume --sweep NAME` is cli/sweep.py's)
        raise CliError("name the run to resume (see `runs`), or give --sweep NAME to finish a sweep")
    store = store_of(args)
    run = get_run(store, args.run)
    try:
        cfg = run.read_config()
    except (OSError, ValueError, ConfigError):
        if Dist.from_env().many:
            raise CliError(f"run {run.id} has no readable config.json; repair it with one process first: "
                           f"{resume_prog()} resume {run.id} --repair {runs_dir_arg(store)}", EXIT_FAILED) from None
        return resume_checked(args, store, run)     # reported as a damaged run (or repaired)
    with launched(cfg, check=False) as dist:   # under torchrun: rank 0 checks (and extends) it, all train it
        return resume_checked(args, store, run, dist)


def resume_checked(args: argparse.Namespace, store: RunStore, run: Run, dist=None) -> int:
    """Refuse a run that cannot resume (CliError), repair or extend it as asked, then train it. Under torchrun rank 0
    checks and holds the lock, and every process trains."""
    from cli.ddp import on_main
    from core.train.distributed import SINGLE

    dist = dist or SINGLE
    on_main(dist, lambda: _prepare_resume(args, store, run))
    try:
        return train_foreground(run, store, signals=getattr(args, "stop_signals", None), lock_held=dist.is_main,
                                dist=dist, on_end=getattr(args, "on_end", None))
    finally:
        if dist.is_main:
            run.release_lock()


def _prepare_resume(args: argparse.Namespace, store: RunStore, run: Run) -> None:
    from core.train.consistency import inspect

    handed_over = run.adopt_lock()   # a scheduler started this process for the run and handed it the run's lock
    info = run.info()
    repair_cmd = f"{resume_prog()} resume {run.id} --repair {runs_dir_arg(store)}"
    refused = resume_refusal(info, extend_to=args.epochs, repair=args.repair, handed_over=handed_over)
    # an edited config.json, a foreign or forged checkpoint (`runs` lists it damaged): said as it is, before anything
    mismatch, fixable = inspect(run) if refused is None or refused.kind == "damaged" else ("", False)
    if mismatch and not (fixable and args.repair):
        raise CliError(f"run {run.id} cannot resume: {mismatch}", EXIT_FAILED)
    if refused is not None:
        hint = {"damaged": f"{repair_cmd} can recover it from checkpoint.pt" if info.repairable
                else f"resuming would start it over from step 0 and drop its records; {repair_cmd} does that, "
                     f"or start a new run" if info.restartable else "it cannot be resumed",
                "active": f"stop it first: {resume_prog()} stop {run.id} {runs_dir_arg(store)}",
                "diverged": "start a new run, e.g. with a lower --lr or --warmup-iters",
                "finished": f"use --epochs M to train longer (M > {info.epochs_done})"}
        if refused.kind == "not-longer":     # a bad --epochs: bad input (exit 2)
            raise CliError(f"--epochs: run {run.id} {refused.text}")
        sep = ": " if refused.kind == "diverged" else "; "
        raise CliError(f"run {run.id} {refused.text}{sep}{hint[refused.kind]}", EXIT_FAILED)
    if args.tensorboard:
        check_tensorboard()          # bad input: said before anything is written
    take_lock(run, store)            # nothing is written before the lock is held (another process may train it)
    try:
        _change_for_resume(args, run, info, mismatch, handed_over)
    except OSError as exc:           # a full disk names the run's disk, not the working directory's
        run.release_lock()
        raise CliError(f"run {run.id} cannot be written: {write_error(exc, run.path, then='resume')}",
                       EXIT_FAILED) from None
    except BaseException:
        run.release_lock()
        raise


def _change_for_resume(args: argparse.Namespace, run: Run, info, mismatch: str, handed_over: bool) -> None:
    """What `resume` changes before training, holding the run's lock: the queue lets go of a run resumed by hand;
    --repair rebuilds it; --epochs makes it longer; --tensorboard turns its event files on."""
    from core.train.consistency import repair_config

    if not handed_over:          # a resume by hand that beat the scheduler: the queue lets go of the run
        from core.serve.queue import leave_by_hand

        leave_by_hand(run)
    if needs_repair(info):
        from core.train.repair import repair

        try:
            for note in repair(run):
                print(f"repaired: {note}", flush=True)
        except RunError as exc:
            raise CliError(f"run {run.id} cannot be repaired: {exc}", EXIT_FAILED) from None
    for note in repair_config(run) if mismatch else ():
        print(f"repaired: {note}", flush=True)
    if args.epochs is not None:
        try:
            extend_run(run, args.epochs)
        except ConfigError as exc:
            raise CliError("; ".join(f"{'--epochs' if k in ('epochs', 'iterations') else k}: {v}"
                                     for k, v in exc.errors.items())) from None
    if args.tensorboard:
        from core.train.tensorboard import enable

        enable(run)


def take_lock(run: Run, store: RunStore) -> None:
    """Become the run's one writer (a no-op when a scheduler handed the lock over), or say in one line why not."""
    try:
        run.acquire_lock()
    except RunLockedError as exc:
        raise CliError(f"{exc}; wait for it or stop it: {resume_prog()} stop {run.id} {runs_dir_arg(store)}",
                       EXIT_FAILED) from None
    except OSError as exc:
        raise CliError(f"run {run.id} cannot be written: {write_error(exc, run.path, then='resume')}",
                       EXIT_FAILED) from None


def train_foreground(run: Run, store: RunStore, out=None, signals: StopSignals | None = None,
                     lock_held: bool = False, dist=None, on_end: str | None = None) -> int:
    """Train ``run`` in this (main) thread with a progress display; SIGINT/SIGTERM stop it with a checkpoint.
    ``lock_held``: the caller holds the run's writer lock (and releases it). Under torchrun (``dist``) only rank 0
    displays and prints (and starts ``on_end``, core/serve/on_end.py); the others say only why they failed."""
    import contextlib

    from cli.ddp import follower_exit, stop_exit
    from core.serve.on_end import start as start_on_end
    from core.train.distributed import SINGLE

    own = signals is None
    signals = StopSignals().install() if own else signals
    signals.armed = True
    out, dist = out or sys.stdout, dist or SINGLE
    resume_cmd = f"{resume_prog()} resume {run.id} {runs_dir_arg(store)}"
    try:
        if dist.is_main:
            print(f"run {run.id}", file=out, flush=True)
        from cli.progress import make_display
        from core.train.trainer import Trainer

        if signals.event.is_set() and not dist.many:   # a signal while the engine was being imported: not started
            state, trainer = "not started", None
        else:   # (under DDP every process starts, and they stop together at the first iteration)
            with make_display(out, signals.event) if dist.is_main else contextlib.nullcontext() as display:
                early = partial(signals.exit_now, f"run {run.id}: stopped before its first step completed; nothing to "
                                f"save: {resume_cmd} continues it", before=partial(start_on_end, on_end, run))
                trainer = Trainer(run, on_event=display, stop_event=signals.event, lock_held=lock_held, dist=dist,
                                  exit_early=None if dist.many else early)
                state = trainer.run()
    except RunLockedError as exc:
        raise CliError(f"{exc}; wait for it or stop it: {resume_prog()} stop {run.id} {runs_dir_arg(store)}",
                       EXIT_FAILED) from None
    except RunError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    except OSError as exc:
        raise CliError(f"run {run.id} cannot be written: {write_error(exc, run.path, then='resume')}",
                       EXIT_FAILED) from None
    finally:
        if own:
            signals.restore()
    if not dist.is_main:
        return follower_exit(dist, state, trainer.message if trainer else "", signals)
    info = run.info()
    start_on_end(on_end, run)        # the user's command, detached (never delays the exit)
    if state == "finished":
        print(f"finished {run.id}: {epoch_count(info.epochs_done)}, test error {pct(info.final_test_err)} "
              f"(best {pct(info.best_test_err)}), {duration(info.duration_s)}; folder {run.path}", file=out, flush=True)
        return EXIT_OK
    if state in ("stopped", "not started"):
        where = (f"at step {info.step}/{info.total_steps} ({info.epochs_done}/{info.total_epochs} epochs done); "
                 f"checkpoint saved" if state == "stopped" else f"before training started (the run is {info.state})")
        print(f"stopped by {signals.name()} {where}", file=out)
        print(f"resume with: {resume_cmd}", file=out, flush=True)
        return stop_exit(dist, signals)
    print(f"{state}: {trainer.message or info.error or 'no reason recorded'}", file=out, flush=True)
    return EXIT_FAILED


# -- stop --------------------------------------------------------------------------------------------------------------
def cmd_stop(args: argparse.Namespace) -> int:
    if not args.timeout >= 0:        # NaN too
        raise CliError(f"--timeout: must be 0 or more seconds, got {args.timeout:g}")
    store = store_of(args)
    run = get_run(store, args.run)
    info = run.info()
    refused = stop_refusal(info)
    if refused is not None and refused.kind == "crashed":
        raise CliError(f"run {run.id} {refused.text}; resume it with: {resume_prog()} resume {run.id} "
                       f"{runs_dir_arg(store)}", EXIT_FAILED)
    if waiting_in_slurm(info):        # cancel its job
        from core.serve.slurm import SlurmUnavailable, cancel_pending

        try:
            done = cancel_pending(run)
        except SlurmUnavailable as exc:
            raise CliError(str(exc), EXIT_FAILED) from None
        if done:
            print(f"stopped {run.id}: {done}; resume with: {resume_prog()} resume {run.id} {runs_dir_arg(store)}")
            return EXIT_OK
    if info.state not in ACTIVE:
        why = refused.text if refused is not None else f"is not running (state: {info.state})"
        raise CliError(f"run {run.id} {why}; nothing to stop", EXIT_FAILED)
    run.request("stop")
    if args.no_wait or info.phase and info.status.get("compile_stop") != "now":    # stops after a compile of minutes
        print(f"asked run {run.id} to stop" + (" (it is compiling: it stops once the compile ends)" * bool(info.phase)))
        return EXIT_OK
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        info = run.info()
        if info.state not in ACTIVE:
            break
        time.sleep(0.1)
    else:
        raise CliError(f"run {run.id} did not stop within {args.timeout:g} s (state: {info.state}, step "
                       f"{info.step}); the request stays in place and it stops at its next iteration", EXIT_FAILED)
    if info.state == "stopped":
        print(f"stopped {run.id} at step {info.step}/{info.total_steps} ({info.epochs_done}/{info.total_epochs} "
              f"epochs done); resume with: {resume_prog()} resume {run.id} {runs_dir_arg(store)}")
        return EXIT_OK
    run.clear_request()
    if info.state == "finished":
        print(f"run {run.id} finished before it could stop")
        return EXIT_OK
    raise CliError(f"run {run.id} ended as {info.state} instead of stopping"
                   + (f": {info.error}" if info.error else ""), EXIT_FAILED)
