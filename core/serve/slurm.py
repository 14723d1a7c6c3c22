"""Runs on a Slurm cluster through submitit: ``tui_app.py scheduler --executor slurm``.

The queue's scheduler (core/serve/scheduler.py) takes a launcher; ``SubmititLauncher`` submits each run it starts as a
Slurm job (``submitit.AutoExecutor``) instead of a local process. The job (``TrainJob``) trains the run folder in
its task(s): one task per GPU, each given torchrun's environment by submitit's ``TorchDistributedEnvironment``, so
the DDP code path of core/train/distributed.py is the one that runs. Before a time limit or a preemption Slurm signals
the job; submitit then calls the job's ``__submitit_checkpoint__``, which stops training at the next iteration
with a checkpoint and returns the submission that resumes it, and the job is requeued (submitit's checkpointing
protocol): the run continues exactly where it stopped.

The run folder stays the bus: the runs folder must be on a filesystem the compute nodes share
(``filesystem_note`` says when it does not look like one). ``slurm.json`` in a run folder caches its job id and
the last Slurm state the scheduler saw, for the TUI on the login node. A run waiting in Slurm's queue is
stopped by cancelling its job (``cancel_pending``); a running one through its request file, like any other.

submitit is an optional extra (``pip install -e ".[slurm]"``); ``require_submitit`` says how to get it. With
``cluster="local"`` the same job code runs on this machine (submitit's local executor), which is how it is tested.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from core.store.runs import Run, RunStore, now
from core.util.files import atomic_write_json
from core.util.formatting import slurm_text

JOB_FILE = "slurm.json"
DONE_STATES = ("COMPLETED", "FINISHED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
               "INTERRUPTED", "BOOT_FAIL", "DEADLINE", "PREEMPTED")
WAITING_STATES = ("PENDING", "SUBMITTED", "REQUEUED", "CONFIGURING")
MAX_TIME_LIMITS = 1000       # a run goes on through this many time limits (submitit's default is 3)
SIGNAL_DELAY_S = 120         # Slurm signals the job this long before its time limit
CHECKPOINT_WAIT_S = 90.0     # for the checkpoint after that signal: shorter than the delay, or Slurm kills first
DEFAULT_CPUS_PER_TASK = 8    # a compile (and the data preparation) on the one CPU some sites give by default crawls
DEFAULT_MEM_GB_PER_TASK = 16  # a site's default memory per CPU can be too little for torch and the data set
SHARED_FS = ("nfs", "nfs4", "lustre", "gpfs", "beegfs", "ceph", "cifs", "smb3", "glusterfs", "wekafs", "panfs",
             "fuse.sshfs", "fuse.glusterfs", "fuse.ceph", "fuse.juicefs")
ROOT = Path(__file__).resolve().parents[2]


class SlurmUnavailable(RuntimeError):
    """submitit is missing; the message says how to install it."""


def require_submitit():
    try:
        import submitit
    except ImportError:
        raise SlurmUnavailable('--executor slurm needs submitit, an optional extra: pip install -e ".[slurm]" '
                               '(or pip install submitit)') from None
    return submitit


# -- slurm.json: the job of a run, as last seen (read by Run.read_job) -------------------------------------------------
def write_job(run: Run, **fields: Any) -> dict:
    job = {**run.read_job(), **fields, "updated_at": now()}
    atomic_write_json(run.path / JOB_FILE, job)
    return job


# -- the job -----------------------------------------------------------------------------------------------------------
class TrainJob:
    """What each task of a job runs: train the run folder from where it stands (see the module docstring)."""

    def __init__(self, runs_dir: str, run_id: str):
        self.runs_dir, self.run_id = str(runs_dir), run_id
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self._abandoned = threading.Event()     # set: a stop during the compile recorded the run stopped (below)

    def __getstate__(self) -> dict:       # threads and events stay with the process that made them
        return {"runs_dir": self.runs_dir, "run_id": self.run_id}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["runs_dir"], state["run_id"])

    def __call__(self) -> str:
        submitit = require_submitit()
        from core.train.distributed import process_group
        from core.train.trainer import Trainer

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:     # one task per GPU: torchrun's variables, so the DDP path runs as under torchrun
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        run = RunStore(self.runs_dir).get(self.run_id)
        if env.global_rank == 0:
            write_job(run, job_id=str(env.job_id), state="RUNNING", node=env.hostname)
        outcome: dict[str, Any] = {}
        self._stop = threading.Event()
        with process_group(run.read_config().device) as dist:
            def train() -> None:
                try:
                    outcome["state"] = Trainer(run, stop_event=self._stop, dist=dist,
                                               exit_early=None if dist.many else self._leave_early).run()
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    outcome["error"] = exc

            # a daemon: a thread held in an abandoned compile must not keep the requeued job's process alive
            self._thread = threading.Thread(target=train, name="reslab-trainer", daemon=True)
            self._thread.start()
            try:
                self._wait_for_trainer(limit=None)
            except BaseException:                   # a cancelled local job (SIGINT), submitit's exit after a requeue
                self._stop.set()
                self._wait_for_trainer()
                raise
        if self._abandoned.is_set():              # a stop during the compile: recorded; the compile is left behind
            outcome.pop("error", None)
            outcome["state"] = "stopped"
        if env.global_rank == 0:
            write_job(run, state="COMPLETED" if "state" in outcome else "FAILED")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["state"]

    def __submitit_checkpoint__(self, *args: Any, **kwargs: Any):
        """Slurm's time-out or preemption signal (on global rank 0): checkpoint at the next iteration (the other
        tasks stop with it), list the run as queued again, and return the submission that resumes it."""
        submitit = require_submitit()
        if self._stop is not None:
            self._stop.set()
            self._wait_for_trainer()
        run = RunStore(self.runs_dir).get(self.run_id)
        try:
            stopped = run.read_status().get("state") == "stopped"
        except (OSError, ValueError):
            stopped = False
        if stopped:
            run.update_status(state="queued", updated_at=now())
            saved = ("during the compile, before anything trained in this job" if self._abandoned.is_set()
                     else "checkpoint saved")
            run.log(f"Slurm is ending the job (time limit or preemption): {saved}; the job is requeued and resumes "
                    f"the run")
        write_job(run, state="REQUEUED")
        return submitit.helpers.DelayedSubmission(TrainJob(self.runs_dir, self.run_id))

    checkpoint = __submitit_checkpoint__     # submitit checkpoints only callables that have ``checkpoint``

    def _leave_early(self) -> None:
        """The trainer's ``exit_early`` in a one-task job. A stop before the first step or during the compile
        (core/train/first_step.py, compile_watch.py) has recorded the run stopped where this job took it. The compile
        cannot be interrupted, so its thread waits here for good while the main thread ends the job: for Slurm's
        time-limit signal it requeues the job and exits (submitit), for a stop request it returns "stopped". Either
        is obeyed at once instead of after a compile of minutes. Under DDP the tasks must stop together: they stop
        after the compile (no ``exit_early``)."""
        self._abandoned.set()
        threading.Event().wait()

    def _wait_for_trainer(self, limit: float | None = CHECKPOINT_WAIT_S) -> None:
        """Until the trainer has ended (after a stop: checkpointed) or abandoned its compile; ``limit`` seconds at
        most (None: for as long as it trains). Joined in short steps: the main thread stays free for submitit's
        signal handler."""
        deadline = None if limit is None else time.monotonic() + limit
        while (self._thread is not None and self._thread.is_alive() and not self._abandoned.is_set()
               and (deadline is None or time.monotonic() < deadline)):
            self._thread.join(0.1)


# -- the launcher the scheduler uses -----------------------------------------------------------------------------------
class JobHandle:
    """A submitted job as the scheduler sees a process: ``pid`` (the job id) and ``poll()`` (None while it waits
    or trains, then 0 when it completed, 1 otherwise); each new state goes to slurm.json."""

    whole_job = True     # the scheduler frees the slot when the job ends, not when the run says it stopped

    def __init__(self, job, run: Run):
        self.job, self.run = job, run
        self.pid = int(job.job_id) if str(job.job_id).isdigit() else 0
        self.state: str | None = None

    def poll(self) -> int | None:
        state = str(self.job.state).split()[0] if self.job.state else "UNKNOWN"
        if state != self.state:
            self.state = state
            write_job(self.run, state=state)
        if not self.job.done():
            return None
        return 0 if state in ("COMPLETED", "FINISHED") else 1


class SubmititLauncher:
    """Submits each run as a job of ``cluster`` (slurm, or local: submitit's executor for this machine)."""

    def __init__(self, cluster: str = "slurm", partition: str | None = None, time_min: int = 24 * 60,
                 gpus_per_run: int = 1, account: str | None = None, cpus_per_task: int | None = None,
                 signal_delay_s: int = SIGNAL_DELAY_S, mem_gb_per_task: int | None = None):
        self.submitit = require_submitit()
        self.cluster, self.partition, self.time_min = cluster, partition, time_min
        self.gpus_per_run, self.account, self.cpus_per_task = gpus_per_run, account, cpus_per_task
        self.signal_delay_s = signal_delay_s
        self.mem_gb_per_task = mem_gb_per_task
        path = os.environ.get("PYTHONPATH", "")     # jobs import this code: make sure they find it
        if str(ROOT) not in path.split(os.pathsep):
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), path) if p)

    def executor(self, run: Run):
        # submitit requeues a timed-out job only max_num_timeout times (3 by default), while the run was already
        # listed as queued again: a run longer than 4 time limits then sat "queued" with no job
        ex = self.submitit.AutoExecutor(folder=run.path / "slurm", cluster=self.cluster,
                                        slurm_max_num_timeout=MAX_TIME_LIMITS)
        ex.update_parameters(**self.parameters(run))
        return ex

    def parameters(self, run: Run) -> dict[str, Any]:
        """submitit's parameters for the job of ``run``."""
        gpus = 0 if run.read_config().device == "cpu" else self.gpus_per_run     # a CPU run: that many processes
        params: dict[str, Any] = dict(name=f"reslab-{run.id}", timeout_min=self.time_min, nodes=1,
                                      tasks_per_node=self.gpus_per_run, stderr_to_stdout=True)
        if self.cluster == "slurm":
            params.update(gpus_per_node=gpus, slurm_signal_delay_s=self.signal_delay_s)
            params.update({f"slurm_{k}": v for k, v in (("partition", self.partition), ("account", self.account))
                           if v})
            params["cpus_per_task"] = self.cpus_per_task or DEFAULT_CPUS_PER_TASK
            params["mem_gb"] = (self.mem_gb_per_task or DEFAULT_MEM_GB_PER_TASK) * self.gpus_per_run
        return params

    def start(self, run: Run, slot, lock_fd: int) -> JobHandle:
        """Submit the run (the scheduler then lets go of its lock: the job takes it when it starts)."""
        job = self.executor(run).submit(TrainJob(str(run.path.parent.resolve()), run.id))
        write_job(run, job_id=str(job.job_id), cluster=self.cluster, folder=str(run.path / "slurm"),
                  state="SUBMITTED", submitted_at=now())
        run.log(f"submitted as {slurm_text(run.read_job())}")
        return JobHandle(job, run)

    def adopt(self, run: Run) -> JobHandle | None:
        """The job a previous scheduler submitted for ``run``, while Slurm still has it (not for local jobs)."""
        job = run.read_job()
        if job.get("cluster") != "slurm" or job.get("state") in DONE_STATES or not job.get("job_id"):
            return None
        return JobHandle(self.submitit.SlurmJob(folder=job["folder"], job_id=job["job_id"]), run)


def cancel_pending(run: Run) -> str | None:
    """Stop a run whose job still waits in Slurm's queue: cancel the job and list the run as stopped (resumable).
    Returns what was done, or None when the run has no waiting job (a running one stops through its request)."""
    job = run.read_job()
    if job.get("state") not in WAITING_STATES:
        return None
    try:
        state = run.read_status().get("state")
    except (OSError, ValueError):
        state = None
    if state != "queued":
        return None
    if job.get("cluster") == "local":
        try:
            os.kill(int(job["job_id"]), signal.SIGINT)     # a local job's id is its controller's pid
        except (ProcessLookupError, ValueError):
            pass
    else:
        require_submitit().SlurmJob(folder=job["folder"], job_id=job["job_id"]).cancel(check=False)
    write_job(run, state="CANCELLED")
    run.update_status(state="stopped", updated_at=now())
    run.log(f"stopped: cancelled {slurm_text(job)} before it started")
    return f"cancelled {slurm_text(job)}"


def filesystem_note(path: str | os.PathLike) -> str | None:
    """A warning when ``path`` does not look like a filesystem the compute nodes share; None when it does."""
    target = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and (target == parts[1] or target.startswith(parts[1].rstrip("/") + "/")) \
                        and len(parts[1]) >= len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        return None
    if kind in SHARED_FS:
        return None
    return (f"{target} is on a {kind} filesystem ({best or '?'}), which does not look shared: Slurm jobs on other "
            f"nodes must see this runs folder (put it on the cluster's shared filesystem with --runs-dir)")
