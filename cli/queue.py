"""The queue commands: ``scheduler`` (serve a runs folder on device slots) and ``queue`` (list, add, move, remove).

The work is in core/serve/queue.py, core/serve/scheduler.py and core/serve/scheduler_control.py; this module parses,
prints and maps outcomes to exit codes.
Bad input (a flag, a list, a device) exits 2 before anything is created; a run that cannot be moved or removed
exits 1.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from cli.common import EXIT_FAILED, EXIT_OK, CliError, flag
from cli.folder import get_run, resume_prog, runs_dir_arg, store_of
from cli.slurm import slurm_launcher, slurm_options
from cli.sweep import check_all_data, describe, grid_of, milestone_note, varied
from cli.training import say_note
from core.serve import queue as Q
from core.serve import scheduler as S
from core.serve import scheduler_control as SC
from core.serve.slots import make_slots
from core.store.reader import escape_controls
from core.store.runs import RunError, RunLockedError, names_taken_text, run_folder_note


# -- scheduler ---------------------------------------------------------------------------------------------------------
def scheduler_options(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Checked devices and the options to pass on to a detached scheduler. Raises CliError (exit 2)."""
    from core.serve.gpus import exclusive_gpus, parse_devices

    common = []
    for name in ("retries", "idle_exit"):
        value = getattr(args, name, None)
        if value is not None and not value >= 0:    # nan too
            raise CliError(f"{flag(name)}: must be 0 or more, got {value:g}")
        if value is not None:
            common += [flag(name), f"{value:g}"]
    if getattr(args, "stay", False):
        common.append("--stay")
    if getattr(args, "on_end", None) is not None:
        common += ["--on-end", args.on_end]
    slurm = slurm_options(args)
    if slurm:
        for name, default in (("devices", None), ("per_device", 1), ("gpus_per_run", 1)):
            if getattr(args, name, default) != default:
                raise CliError(f"{flag(name)}: applies to --executor local; a Slurm job takes "
                               f"--slurm-gpus-per-run (and --slurm-max-jobs at once)")
        return ["slurm"], slurm + common
    if getattr(args, "devices", None) is not None and not args.devices.strip():
        raise CliError("--devices: empty; give devices such as cpu or cuda:0,cuda:1, or leave the flag out (every GPU)")
    try:
        devices = parse_devices(getattr(args, "devices", None))
    except ValueError as exc:
        raise CliError(f"--devices: {exc}") from None
    per_device, gpus = getattr(args, "per_device", 1), getattr(args, "gpus_per_run", 1)
    if per_device < 1:
        raise CliError(f"--per-device: must be 1 or more, got {per_device}")
    if per_device > MAX_PER_DEVICE:                  # 100,000 slots on 2 cores is a typo
        raise CliError(f"--per-device: at most {MAX_PER_DEVICE} runs share one device, got {per_device}")
    alone = exclusive_gpus(devices) if per_device > 1 else []
    if alone:
        raise CliError(f"--per-device: {', '.join(alone)} {'is' if len(alone) == 1 else 'are'} in EXCLUSIVE_PROCESS "
                       f"compute mode (one process at a time: a second run there would get no CUDA context); use "
                       f"--per-device 1, or ask for the default mode (nvidia-smi -c DEFAULT, as root)")
    if not 1 <= gpus <= len(devices):
        raise CliError(f"--gpus-per-run: must be between 1 and the {len(devices)} device(s) of --devices "
                       f"({','.join(devices)}), got {gpus}")
    return devices, ["--devices", ",".join(devices), "--per-device", str(per_device), "--gpus-per-run", str(gpus),
                     *common]


MAX_PER_DEVICE = 64       # runs sharing one device at once (small nets on a large GPU): more is a mistake


def start_scheduler(store, options: list[str], timeout: float = 60.0) -> str:
    """Start a detached scheduler unless one serves the folder; returns what to tell the user."""
    proc = SC.start_detached(store.root, options)
    if proc is None:
        return SC.describe(store.root)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = SC.read_state(store.root)
        if state and state.get("pid") == proc.pid:
            slots = escape_controls(", ".join(s["slot"] for s in state.get("slots", [])))   # read from a file
            return (f"scheduler started (pid {proc.pid}) serving {store.root.resolve()} on {slots}; it keeps running "
                    f"after this terminal closes; log: {store.root.resolve() / SC.LOG_FILE}")
        if proc.poll() is not None:
            return SC.describe(store.root) if SC.read_state(store.root) is not None else \
                f"the scheduler ended at once (exit code {proc.returncode}); see {store.root.resolve() / SC.LOG_FILE}"
        time.sleep(0.05)
    return f"a scheduler is starting (pid {proc.pid}); log: {store.root.resolve() / SC.LOG_FILE}"


def cmd_scheduler(args: argparse.Namespace) -> int:
    store = store_of(args, new_runs=not args.stop)
    if args.stop:
        if SC.read_state(store.root) is None:
            print(f"no scheduler serves {store.root}")
        elif SC.stop(store.root):
            print(f"the scheduler of {store.root} stopped; runs it started keep training")
        else:
            raise CliError(f"the scheduler of {store.root} did not stop ({SC.describe(store.root)})", EXIT_FAILED)
        return EXIT_OK
    devices, options = scheduler_options(args)    # bad input is bad on a served folder too (exit 2)
    if SC.read_state(store.root) is not None:
        print(SC.describe(store.root))
        return EXIT_OK
    note = None
    if args.executor == "slurm" and args.slurm_cluster == "slurm":
        from core.serve.slurm import filesystem_note

        note = filesystem_note(store.root.parent if not store.root.exists() else store.root)
    if not args.foreground:
        if note:
            print(f"warning: {note}")
        print(start_scheduler(store, options))
        return EXIT_OK
    launcher, slots = slurm_launcher(args) if args.executor == "slurm" else \
        (None, make_slots(devices, args.per_device, args.gpus_per_run))
    sched = S.Scheduler(store, slots, launcher=launcher, retries=args.retries, idle_exit_s=args.idle_exit,
                        stay=args.stay, echo=lambda line: print(line, flush=True), on_end=args.on_end)
    if note:
        store.root.mkdir(parents=True, exist_ok=True)
        sched.log(f"warning: {note}")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
            continue     # under nohup the terminal closing is no reason to leave
        signal.signal(sig, lambda *_: sched.stop_event.set())
    try:
        sched.serve()
    except SC.SchedulerRunning as exc:
        print(exc)
    return EXIT_OK


# -- queue -------------------------------------------------------------------------------------------------------------
def cmd_queue(args: argparse.Namespace) -> int:
    handler = {None: queue_list, "add": queue_add, "move": queue_move, "remove": queue_remove}[args.queue_command]
    return handler(args)


def queue_list(args: argparse.Namespace) -> int:
    store = store_of(args)
    rows = Q.queue_rows(store)
    state = SC.read_state(store.root)
    if getattr(args, "json", False):
        json.dump({"scheduler": state, "runs": rows}, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
        return EXIT_OK
    if state is None:   # runs a Slurm scheduler placed: a plain one would train the queue on this machine
        slurm = "--executor slurm (and your --slurm-* flags) " if any(
            e.get("device") == "slurm" for _, e in Q.entries(store)) else ""
        print(f"no scheduler serves {store.root}; start one with: {resume_prog()} scheduler {slurm}"
              f"{runs_dir_arg(store)}")
    elif not state:     # served, but its scheduler.json is not written yet (or unreadable)
        print(SC.describe(store.root).replace("already serves", "serves"))
    else:
        busy = sum(1 for s in state.get("slots", []) if s.get("run"))
        print(escape_controls(f"scheduler pid {state.get('pid')}: {busy} of {len(state.get('slots', []))} slots "
                              f"busy ({', '.join(str(s.get('slot')) for s in state.get('slots', []))})"))
    if not rows:
        print("nothing queued or running")
        if note := run_folder_note(store.root):
            print(note)
        return EXIT_OK
    print(f"{'pos':>3}  {'run':<34} {'state':<8} {'device':<8} {'slot':<10} {'epochs':>7}  settings")
    for r in rows:   # device and slot come from files of the runs folder: their control characters are escaped
        epochs = f"{r['epochs_done']}/{r['total_epochs'] or '?'}"
        device, slot = (escape_controls(str(r[k] or "-")) for k in ("device", "slot"))
        print(f"{r['position'] or '':>3}  {r['id']:<34} {r['state']:<8} {device:<8} {slot:<10} "
              f"{epochs:>7}  {r['label']}" + (f" (retried {r['retries']}x)" if r["retries"] else ""))
    return EXIT_OK


def queue_add(args: argparse.Namespace) -> int:
    store = store_of(args, new_runs=True)
    configs = grid_of(args)
    if taken := store.taken_names(configs):
        raise CliError(f"{flag('name')}: {names_taken_text(taken, store.root)}; choose another name or leave "
                       f"{flag('name')} out for a generated one")
    options = scheduler_options(args)[1]     # checked even when a scheduler serves the folder: bad input is bad
    state = SC.read_state(store.root)
    served = state is not None
    if served and args.executor == "slurm" and state.get("devices") and "slurm" not in state["devices"]:
        raise CliError(f"--executor slurm: the scheduler (pid {state.get('pid')}) serving {store.root.resolve()} "
                       f"trains on this machine ({', '.join(state['devices'])}), not through Slurm; stop it first: "
                       f"{resume_prog()} scheduler --stop {runs_dir_arg(store)}")
    check_all_data(configs)
    first = len(Q.queued(store)) + 1
    try:
        runs = Q.enqueue(store, configs)
    except RunError as exc:         # a read-only or full runs folder: as train says it (exit 2, nothing created)
        raise CliError(str(exc)) from None
    keys = [k for k in varied(configs) if k not in ("depth", "shortcut", "width", "optimizer", "seed")]
    for i, (run, cfg) in enumerate(zip(runs, configs)):
        if note := milestone_note(args, cfg):
            say_note(note)
            run.log(note)            # events.log says why its milestones are not the recipe's
        print(f"queued {run.id} at position {first + i}: {cfg.label()} seed {cfg.seed}"
              + (f" {describe(cfg, keys)}" if keys else ""))
    if len(configs) > 1:
        print(f"sweep {configs[0].sweep_name}: {len(configs)} runs; when they are done: "
              f"{resume_prog()} report --sweep {configs[0].sweep_name} {runs_dir_arg(store)}")
    if served:
        given = [flag(n) for n in ("devices", "on_end") if getattr(args, n) is not None] + \
            [flag(n) for n in ("per_device", "gpus_per_run") if getattr(args, n) != 1]
        ignored = f" ({', '.join(given)} apply to a new scheduler only)" if given else ""
        print(SC.describe(store.root).replace("already serves", "serves") + ignored)
    else:
        print(start_scheduler(store, options))
    return EXIT_OK


def queue_move(args: argparse.Namespace) -> int:
    store = store_of(args)
    run = get_run(store, args.run)
    try:
        order = Q.move(store, run.id, args.position)
    except ValueError as exc:
        raise CliError(f"POS: {exc}") from None
    except RunError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    print(f"{run.id} is now at position {order.index(run.id) + 1} of {len(order)}" if run.id in order else
          f"{run.id} is starting now")
    return EXIT_OK


def queue_remove(args: argparse.Namespace) -> int:
    store = store_of(args)
    run = get_run(store, args.run)
    try:
        outcome = Q.remove(store, run.id, delete=args.delete)
    except RunLockedError as exc:
        raise CliError(f"{exc}; stop it instead: {resume_prog()} stop {run.id} {runs_dir_arg(store)}",
                       EXIT_FAILED) from None
    except RunError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    except OSError as exc:       # its lock is a link or a folder (NotAFileError), or the folder is read-only
        raise CliError(f"run {run.id} cannot be changed: {exc.strerror or exc}", EXIT_FAILED) from None
    print(f"removed {run.id} from the queue and deleted its folder" if outcome == "deleted" else
          f"removed {run.id} from the queue; it stays as a stopped run ({resume_prog()} resume {run.id} "
          f"{runs_dir_arg(store)} trains it, `queue remove --delete` or `d` in the app deletes it)")
    return EXIT_OK


COMMANDS = {"scheduler": cmd_scheduler, "queue": cmd_queue}
