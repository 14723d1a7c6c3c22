"""``scheduler --executor slurm``: the flags that send the queue's runs to a Slurm cluster (core/serve/slurm.py)."""
from __future__ import annotations

import argparse

from cli.common import EXIT_FAILED, CliError

EXECUTORS = ("local", "slurm")


def add_slurm_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local: train in processes on this machine's --devices; slurm: submit each run as a "
                             "Slurm job through submitit (pip install -e \".[slurm]\"); the runs folder must be on "
                             "a filesystem the compute nodes share [default: local]")
    g = parser.add_argument_group("Slurm (with --executor slurm)")
    g.add_argument("--slurm-partition", metavar="P", help="partition to submit to [default: the cluster's]")
    g.add_argument("--slurm-time", metavar="MIN", type=int, default=24 * 60,
                   help="time limit of each job in minutes; a run that needs longer is checkpointed and requeued "
                        "before the limit [default: 1440]")
    g.add_argument("--slurm-gpus-per-run", metavar="N", type=int, default=1,
                   help="GPUs of each job on one node, one task (DDP process) each; a run configured for the "
                        "CPU gets N processes [default: 1]")
    g.add_argument("--slurm-account", metavar="A", help="account to charge [default: yours]")
    g.add_argument("--slurm-cpus-per-task", metavar="N", type=int, help="CPUs per task [default: 8]")
    g.add_argument("--slurm-mem-gb", metavar="N", type=int, help="memory per task in GB [default: 16]")
    g.add_argument("--slurm-max-jobs", metavar="N", type=int, default=8,
                   help="jobs submitted at once, waiting or running [default: 8]")
    g.add_argument("--slurm-cluster", choices=("slurm", "local"), default="slurm",
                   help="local: run the same job code on this machine with submitit's local executor (to try "
                        "the set-up without a cluster) [default: slurm]")


def slurm_options(args: argparse.Namespace) -> list[str]:
    """The options a detached scheduler needs to submit like this one; checks them and submitit (CliError)."""
    if getattr(args, "executor", "local") != "slurm":
        return []
    from core.serve.slurm import SlurmUnavailable, require_submitit

    try:
        require_submitit()
    except SlurmUnavailable as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    for name in ("slurm_time", "slurm_gpus_per_run", "slurm_max_jobs", "slurm_cpus_per_task", "slurm_mem_gb"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CliError(f"--{name.replace('_', '-')}: must be 1 or more, got {value}")
    options = ["--executor", "slurm"]
    for name in ("slurm_partition", "slurm_time", "slurm_gpus_per_run", "slurm_account", "slurm_cpus_per_task",
                 "slurm_mem_gb", "slurm_max_jobs", "slurm_cluster"):
        if getattr(args, name) is not None:
            options += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return options


def slurm_launcher(args: argparse.Namespace):
    """(launcher, slots) of a scheduler that submits to Slurm: one slot per job it may have at once."""
    from core.serve.slots import make_slots
    from core.serve.slurm import SubmititLauncher

    launcher = SubmititLauncher(args.slurm_cluster, args.slurm_partition, args.slurm_time, args.slurm_gpus_per_run,
                                args.slurm_account, args.slurm_cpus_per_task,
                                mem_gb_per_task=args.slurm_mem_gb)
    return launcher, make_slots(["slurm"], args.slurm_max_jobs)
