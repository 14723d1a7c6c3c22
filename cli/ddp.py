"""``train`` and ``resume`` under torchrun: every process runs the same command (core/train/distributed.py).

Only rank 0 does what must happen once: it checks the data (and downloads it), creates or checks and extends the
run folder, and prints; the others wait for its answer (``on_main``) and then train their share silently, printing
only their own failure. A mistake found before training (a batch that does not divide, --sync-bn on the CPU, a
device this machine lacks) is bad input on every process: exit 2, nothing created.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError, flag
from core.spec.config import RunConfig
from core.train.device import DeviceError, resolve_device
from core.train.distributed import Dist, check_launch, process_group


@contextlib.contextmanager
def launched(cfg: RunConfig, check: bool = True, memory: bool = True) -> Iterator[Dist]:
    """This process's place in the run (joining torchrun's process group for the block); checks ``cfg`` for it.
    A batch that does not divide among the processes (or --sync-bn on the CPU) is bad input for a new or an
    existing run alike: exit 2, nothing changed. ``check`` (a new run): a device this machine lacks is too, and so
    is a run that cannot fit its memory (``memory``: unless --ignore-memory); for an existing run that is the
    trainer's to report, in its folder."""
    try:
        with process_group(cfg.device) as dist:
            device = dist.device
            if device is None and check:     # a new run: a device this machine lacks is bad input (exit 2)
                device = resolve_device(cfg.device)
            elif device is None and cfg.sync_bn:
                with contextlib.suppress(DeviceError):   # an existing run: a missing GPU is the trainer's to report
                    device = resolve_device(cfg.device)
            errors = check_launch(cfg, dist.world, device)
            if check and memory and device is not None and not errors:      # a new run: one that cannot fit
                from core.spec.limits import fit_error
                from core.train.device import total_memory

                if why := fit_error(cfg, total_memory(device), str(device),
                                    device.type == "cuda" and cfg.on_oom == "split" and not dist.many):
                    if not dist.is_main:
                        raise SystemExit(EXIT_USAGE)
                    raise CliError(why)
            if errors and not dist.is_main:
                raise SystemExit(EXIT_USAGE)        # rank 0 says why, once
            if errors:
                raise CliError("; ".join(f"{flag(k)}: {v}" for k, v in errors.items()))
            yield dist
    except DeviceError as exc:
        raise CliError(f"--device: {exc}") from None


def on_main(dist: Dist, fn: Callable[[], Any]) -> Any:
    """``fn()`` on rank 0 only; every process returns its result. Its CliError is printed once, by rank 0; the
    other processes exit with the same code, silently."""
    if not dist.many:
        return fn()
    outcome: Any = None
    if dist.is_main:
        try:
            outcome = ("ok", fn())
        except CliError as exc:
            dist.from_main(("error", exc.code))
            raise
        except BaseException:
            dist.from_main(("error", EXIT_FAILED))
            raise
    outcome = dist.from_main(outcome)
    if outcome[0] == "error" and not dist.is_main:
        raise SystemExit(outcome[1])
    return outcome[1]


def stop_exit(dist: Dist, signals) -> int:
    """The exit code of a process that stopped with a checkpoint. Under torchrun a stop request (the TUI, ``stop``)
    exits 0 on every process: torchrun takes any other code for a failure (a ChildFailedError traceback, exit 1)
    and, with --max-restarts, starts the processes again, which would resume the run just stopped. A signal keeps
    its code (130, 143): torchrun handles its own signals."""
    return EXIT_OK if dist.many and not signals.received else signals.exit_code()


def follower_exit(dist: Dist, state: str, error: str, signals) -> int:
    """The exit code of a process other than rank 0 (which prints for the run); only its own failure is printed."""
    if state == "finished":
        return EXIT_OK
    if state in ("stopped", "not started"):
        return stop_exit(dist, signals)
    print(f"process {dist.rank} of {dist.world}: {state}" + (f": {error}" if error else ""), file=sys.stderr)
    return EXIT_FAILED

