"""The queue on Slurm through submitit, tested with submitit's local executor (the same job code, no cluster):
runs go through ``AutoExecutor(cluster="local")`` and finish; Slurm's warning signal before a time limit
checkpoints the run and requeues the job, which resumes it exactly."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from cli.main import main
from core.serve import queue as Q
from core.serve import scheduler as S
from core.store.runs import RunStore
from core.train.trainer import train_run
from tests.conftest import tiny_config
from tests.core.train.test_distributed import max_diff


def wait_for(check, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def state_of(run) -> str | None:
    try:
        return run.read_status().get("state")
    except (OSError, ValueError):
        return None


def test_queue_runs_as_local_submitit_jobs_and_a_timed_out_job_is_requeued_and_resumes(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    from core.serve.slurm import SubmititLauncher

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    cfg = tiny_config(epochs=4, deterministic=True, channels_last="off", device="cpu")
    store = RunStore(tmp_path / "runs")
    (signalled,) = Q.enqueue(store, [cfg.with_overrides(name="sig")])
    # two tasks a job (DDP through submitit's TorchDistributedEnvironment, as on GPUs); time limit 5 min: below
    # submitit's 10-minute margin, so its handler takes any signal as a time-out
    sched = S.Scheduler(store, S.make_slots(["slurm"], 1), launcher=SubmititLauncher("local", time_min=5,
                                                                                   gpus_per_run=2), idle_exit_s=60)
    thread = threading.Thread(target=sched.serve, daemon=True)
    thread.start()
    try:
        log = store.root / S.LOG_FILE
        wait_for(lambda: state_of(signalled) == "running"
                 or "cannot start" in (log.read_text() if log.exists() else ""),
                 "the job to start training")
        assert state_of(signalled) == "running", log.read_text()
        os.kill(signalled.read_status()["pid"], signal.SIGUSR2)      # what Slurm sends to rank 0 before the limit
        wait_for(lambda: state_of(signalled) == "finished", "the run to finish", 180)
        wait_for(lambda: "sig finished on slurm#0" in log.read_text(), "the scheduler to see the job end")
    finally:
        sched.stop_event.set()
        thread.join(30)
        job = signalled.read_job()       # a job a failed test left behind: its controller's pid is its id
        if job.get("job_id", "").isdigit() and job.get("state") not in ("FINISHED", "COMPLETED"):
            try:
                os.kill(int(job["job_id"]), signal.SIGINT)
            except ProcessLookupError:
                pass
    job = signalled.read_job()
    assert job["cluster"] == "local" and job["state"] == "FINISHED"
    assert f"submitted as local job {job['job_id']}" in "\n".join(signalled.read_events())
    events = "\n".join(signalled.read_events())
    assert "Slurm is ending the job" in events and "resumed at epoch" in events
    assert [r["epoch"] for r in signalled.read_epochs()] == [1, 2, 3, 4]
    assert signalled.read_status()["world_size"] == 2
    log = "".join(p.read_text() for p in (signalled.path / "slurm").glob("*_log.out"))
    assert "this job is timed-out" in log and "Requeued job" in log
    torch.set_num_threads(1)      # as the job's tasks: the same arithmetic
    ref, _ = train_run(RunStore(tmp_path / "ref"), cfg.with_overrides(name="ref", micro_batches=2))
    assert max_diff(ref.checkpoint_path, signalled.checkpoint_path) <= 1e-5, "the requeued job continued exactly"
    assert [r["train_err"] for r in signalled.read_epochs()] == [r["train_err"] for r in ref.read_epochs()]


def test_stop_cancels_a_job_that_waits_in_the_queue(tmp_path, capsys):
    from core.serve.slurm import write_job

    store = RunStore(tmp_path)
    (run,) = Q.enqueue(store, [tiny_config(name="waiting")])
    # the stand-in job prints once it is up: a cancel (SIGINT) that came during the interpreter's start-up was
    # swallowed there ('Exception ignored ... KeyboardInterrupt' on a loaded machine) and the job slept on
    controller = subprocess.Popen([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                                  stdout=subprocess.PIPE, text=True)
    try:
        assert controller.stdout.readline().strip() == "up"
        write_job(run, job_id=str(controller.pid), cluster="local", state="PENDING", folder=str(run.path / "slurm"))
        assert main(["stop", "waiting", "--runs-dir", str(tmp_path)]) == 0
        assert controller.wait(20) != 0
    finally:
        controller.kill()
    assert "cancelled local job" in capsys.readouterr().out
    assert run.info().state == "stopped" and run.read_job()["state"] == "CANCELLED"
    assert "local job" in main_runs_note(tmp_path, capsys)


def main_runs_note(root, capsys) -> str:
    assert main(["runs", "--runs-dir", str(root)]) == 0
    return capsys.readouterr().out


def test_slurm_without_submitit_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)     # import submitit now raises ImportError
    assert main(["scheduler", "--executor", "slurm", "--runs-dir", str(tmp_path / "runs")]) == 1
    assert 'pip install -e ".[slurm]"' in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_local_disk_is_not_taken_for_a_shared_filesystem(tmp_path):
    from core.serve.slurm import filesystem_note

    kind = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True).stdout
    if any(word in kind for word in ("nfs", "lustre", "gpfs", "ceph")):
        pytest.skip(f"{tmp_path} is on a shared filesystem ({kind.strip()})")
    note = filesystem_note(tmp_path)
    assert note and "does not look shared" in note and "--runs-dir" in note


def test_a_run_is_requeued_through_every_time_limit_it_needs(tmp_path, monkeypatch):
    # submitit requeues a timed-out job 3 times by default, while the run was listed as queued again after each:
    # the 4th time limit left it "queued" with no job. A fake srun on PATH lets submitit build its Slurm executor.
    from core.serve.slurm import MAX_TIME_LIMITS, SubmititLauncher

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run = RunStore(tmp_path / "runs").create(tiny_config())
    executor = SubmititLauncher(cluster="slurm").executor(run)
    assert executor._executor.max_num_timeout == MAX_TIME_LIMITS >= 100


@pytest.mark.slow
def test_a_time_limit_signal_during_the_compile_requeues_the_job_at_once(tmp_path, monkeypatch):
    """A one-task job compiling when Slurm's signal comes: the run is recorded stopped and the job requeued at once,
    not after the compile (minutes on a GPU, while the signal gives 120 s); the requeued job's own compile then
    obeys a stop request at once too. Before, both waited for the compile's end."""
    pytest.importorskip("submitit")
    from core.serve.slurm import SubmititLauncher

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))   # a cold compile: seconds at least
    store = RunStore(tmp_path / "runs")
    (run,) = Q.enqueue(store, [tiny_config(epochs=1, channels_last="off", device="cpu", compile="default",
                                           name="cmp")])
    sched = S.Scheduler(store, S.make_slots(["slurm"], 1), launcher=SubmititLauncher("local", time_min=5),
                        idle_exit_s=60)
    thread = threading.Thread(target=sched.serve, daemon=True)
    thread.start()

    def compiling() -> bool:
        try:
            return run.read_status().get("compiling") is True
        except (OSError, ValueError):
            return False

    try:
        wait_for(compiling, "the job to compile")
        first = run.read_job()["job_id"]
        asked = time.monotonic()
        os.kill(run.read_status()["pid"], signal.SIGUSR2)      # what Slurm sends before the time limit
        wait_for(lambda: run.read_job().get("state") == "REQUEUED", "the requeue", 60)
        took = time.monotonic() - asked
        events = "\n".join(run.read_events())
        assert "stopped during the compile" in events and "torch.compile took" not in events, events
        assert "during the compile, before anything trained" in events and took < 20, took
        wait_for(lambda: compiling() and run.read_status().get("pid") != int(first), "the requeued job's compile")
        asked = time.monotonic()
        run.request("stop")
        wait_for(lambda: state_of(run) == "stopped" and not compiling(), "the stop", 60)
        assert time.monotonic() - asked < 20
        wait_for(lambda: "cmp stopped on slurm#0" in (store.root / S.LOG_FILE).read_text()
                 or run.read_job().get("state") in ("COMPLETED", "FINISHED"), "the job to end", 60)
    finally:
        sched.stop_event.set()
        thread.join(30)
        job = run.read_job()
        if job.get("job_id", "").isdigit() and job.get("state") not in ("FINISHED", "COMPLETED"):
            try:
                os.kill(int(job["job_id"]), signal.SIGINT)
            except ProcessLookupError:
                pass
    assert "torch.compile took" not in "\n".join(run.read_events())
    assert run.read_status()["step"] == 0
