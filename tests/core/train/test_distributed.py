"""DDP on the CPU with gloo: torchrun through the real CLI, and forked processes running the same trainer (for
deterministic stop points); micro-batches, which DDP reproduces on one process; a rank that dies."""
from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from core.data.loader import DeviceLoader
from core.serve import queue as Q
from core.serve import scheduler as S
from core.serve import scheduler_control as SC
from core.serve.slots import make_slots
from core.spec.config import RunConfig
from core.store.runs import RunStore
from core.train.checkpoint import load_checkpoint
from core.train.distributed import check_launch
from core.train.models import cifar_resnet
from core.train.step import TrainStep
from core.train.trainer import Trainer, train_run
from tests.conftest import ROOT, tiny_config
from tests.core.train.test_trainer import StopAfter

# 20 iterations of 32 images (8 an epoch): two full epochs and a partial third
DDP_CFG = dict(iterations=20, deterministic=True, augment=True, log_every=4, channels_last="off", lr=0.05)
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NO_COLOR": "1", "RESLAB_DIST_TIMEOUT_S": "60"}


def ddp_config(**kw) -> RunConfig:
    return tiny_config(**{**DDP_CFG, **kw})


def cli_flags(cfg: RunConfig) -> list[str]:
    """The `train` flags that make ``cfg``."""
    out = []
    for key, value in cfg.to_dict().items():
        if value == getattr(RunConfig(), key) and key != "device":
            continue
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(name if value else "--no-" + name[2:])
        elif isinstance(value, list):
            out += [name, ",".join(map(str, value))] if value else []   # an empty list is refused as a flag
        elif value != "":
            out += [name, str(value)]
    return out


def torchrun(nproc: int, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           str(ROOT / "tui_app.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def parameters(path) -> dict[str, torch.Tensor]:
    """The model's parameters in a checkpoint (not its buffers: batch-norm running statistics differ)."""
    names = {n for n, _ in cifar_resnet(8, "A", 4).named_parameters()}
    return {k: v for k, v in load_checkpoint(path)["model"].items() if k in names}


def max_diff(a, b) -> float:
    pa, pb = parameters(a), parameters(b)
    assert pa.keys() == pb.keys() and pa
    return max((pa[k] - pb[k]).abs().max().item() for k in pa)


def train_rows(run):
    return [{k: r[k] for k in ("epoch", "step", "train_loss", "train_err")} for r in run.read_epochs()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted single-process run with --micro-batches 2 that DDP over 2 processes must reproduce."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    run, state = train_run(RunStore(tmp_path_factory.mktemp("ref")), ddp_config(micro_batches=2, name="one"))
    assert state == "finished"
    yield run
    torch.set_num_threads(threads)


# -- forked ranks: the same trainer, deterministic stops --------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, port: int, runs: str, run_id: str, stop_after: int) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), RESLAB_DIST_TIMEOUT_S="60")
    torch.set_num_threads(1)
    from core.train.distributed import process_group

    with process_group("cpu") as dist:
        state = Trainer(RunStore(runs).get(run_id), stop_event=StopAfter(stop_after) if stop_after else None,
                        dist=dist).run()
    os._exit({"finished": 0, "stopped": 3, "crashed": 4}.get(state, 1))


def fork_ranks(world: int, store: RunStore, run_id: str, stop_at: int = 0) -> list:
    """Start ``world`` forked processes training ``run_id`` together; with ``stop_at`` (a multiple of DDP_CFG's
    log_every), they stop after that many iterations (under DDP the stop flag is looked at when the processes agree:
    each time a window is sealed, every log_every iterations)."""
    assert stop_at % DDP_CFG["log_every"] == 0
    stop_after = stop_at // DDP_CFG["log_every"]
    import torch._dynamo  # noqa: F401 - what building an optimizer imports: once here, not in every child
    ctx = multiprocessing.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, world, port, str(store.root), run_id, stop_after))
             for r in range(world)]
    for p in procs:
        p.start()
    return procs


def wait_all(procs, timeout: float) -> list[int | None]:
    deadline = time.monotonic() + timeout
    try:
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        return [p.exitcode for p in procs]
    finally:
        for p in procs:          # never leave a process behind
            if p.is_alive():
                p.kill()
                p.join(5)


# -- tests ---------------------------------------------------------------------------------------------------------
def test_torchrun_two_processes_compute_what_one_does_with_two_micro_batches(tmp_path, reference, capsys):
    from cli.main import main
    from screens.widgets.run_table import row_cells

    cfg = ddp_config(name="ddp")
    done = torchrun(2, "train", *cli_flags(cfg), "--runs-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["ddp"], "only rank 0 creates a run folder"
    run = RunStore(tmp_path).get("ddp")
    status = run.read_status()
    assert status["state"] == "finished" and status["step"] == 20 and status["epoch"] == 3
    assert status["world_size"] == 2 and len(status["devices"]) == 2 and status["micro_batches"] == 2
    assert [r["epoch"] for r in run.read_epochs()] == [1, 2, 3]
    assert [s["step"] for s in run.read_steps()] == [4, 8, 12, 16, 20]
    events = "\n".join(run.read_events())
    assert events.count("started ") == 1 and "data-parallel over 2 processes" in events
    assert done.stdout.count("finished ddp") == 1, "rank 0 alone prints"
    assert "finished x2" in row_cells(run.info(), False)["status"].plain, run.info().error
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0 and "finished x2" in capsys.readouterr().out
    assert main(["show", "ddp", "--runs-dir", str(tmp_path)]) == 0 and "2 × cpu on" in capsys.readouterr().out
    diff = max_diff(run.checkpoint_path, reference.checkpoint_path)
    print(f"DDP x2 vs one process with --micro-batches 2, max |param diff| after 20 iterations: {diff:.3g}")
    assert diff <= 1e-5
    assert [s["loss"] for s in run.read_steps()] == pytest.approx([s["loss"] for s in reference.read_steps()],
                                                                   abs=1e-5)
    ours, theirs = train_rows(run), train_rows(reference)
    assert [r["train_err"] for r in ours] == [r["train_err"] for r in theirs]
    assert [r["train_loss"] for r in ours] == pytest.approx([r["train_loss"] for r in theirs], abs=1e-5)


def test_stopped_ddp_run_resumes_on_one_process_then_on_two(tmp_path, reference):
    from cli.main import main

    store = RunStore(tmp_path)
    run = store.create(ddp_config(name="cut"))
    assert wait_all(fork_ranks(2, store, run.id, stop_at=4), 120) == [3, 3]
    status = run.read_status()
    assert status["state"] == "stopped" and status["step"] == 4 and status["world_size"] == 2
    assert load_checkpoint(run.checkpoint_path)["micro_batches"] == 2

    assert Trainer(run, stop_event=StopAfter(6)).run() == "stopped"     # one process: 2 micro-batches
    status = run.read_status()
    assert status["step"] == 10 and status["world_size"] == 1 and status["micro_batches"] == 2

    # back in the queue: a scheduler with a slot of two devices resumes it with torchrun on both
    Q.requeue(store, "cut")
    try:
        assert main(["scheduler", "--devices", "cpu,cpu", "--gpus-per-run", "2", "--idle-exit", "20",
                     "--runs-dir", str(tmp_path)]) == 0
        deadline = time.monotonic() + 180
        while run.read_status()["state"] != "finished":
            assert time.monotonic() < deadline and run.read_status()["state"] in ("queued", "running"), \
                (run.path / "process.log").read_text()
            time.sleep(0.1)
    finally:
        SC.stop(tmp_path, timeout=20)
    assert "started cut on cpu+cpu#0" in (tmp_path / SC.LOG_FILE).read_text()
    assert run.read_status()["world_size"] == 2
    assert run.read_status()["state"] == "finished"
    assert [s["step"] for s in run.read_steps()] == [s["step"] for s in reference.read_steps()]
    assert [s["loss"] for s in run.read_steps()] == pytest.approx([s["loss"] for s in reference.read_steps()],
                                                                   abs=1e-5)
    assert [r["train_err"] for r in train_rows(run)] == [r["train_err"] for r in train_rows(reference)]
    assert max_diff(run.checkpoint_path, reference.checkpoint_path) <= 1e-5


def test_every_process_pauses_continues_and_stops_on_rank_0s_request_file(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=100, channels_last="off"))
    procs = fork_ranks(2, store, run.id)

    def wait(what, check, timeout=90):
        deadline = time.monotonic() + timeout
        while not check():
            assert all(p.is_alive() for p in procs), f"a process ended while waiting for {what}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    try:
        wait("training", lambda: "data-parallel over 2" in "\n".join(run.read_events()))
        run.request("pause")
        wait("the pause", lambda: run.read_status()["state"] == "paused")
        paused = run.read_status()
        # both processes hold: no iteration while paused, though a heartbeat (written only by a loop that holds and
        # agrees with the other process) comes
        wait("a heartbeat while paused", lambda: run.read_status()["updated_at"] > paused["updated_at"])
        step = paused["step"]
        assert run.read_status()["step"] == step and run.read_status()["state"] == "paused"
        run.request("continue")
        wait("training again", lambda: run.read_status()["state"] == "running")
        run.request("stop")
        codes = wait_all(procs, 60)
    finally:
        wait_all(procs, 0)
    assert codes == [3, 3], "both stopped with a checkpoint"
    status = run.read_status()
    assert status["state"] == "stopped" and status["world_size"] == 2 and status["step"] > step
    events = "\n".join(run.read_events())
    assert "paused at" in events and "continued at" in events and "stop requested from another process" in events


@pytest.mark.parametrize("victim", [1, 0])
def test_a_dying_process_leaves_a_crashed_resumable_run(tmp_path, victim):
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=100, channels_last="off"))
    procs = fork_ranks(2, store, run.id)
    try:
        deadline = time.monotonic() + 90
        while run.read_status().get("step", 0) < 2:
            assert all(p.is_alive() for p in procs), "a process ended early"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        os.kill(procs[victim].pid, signal.SIGKILL)
        codes = wait_all(procs, 60)
    finally:
        wait_all(procs, 0)
    survivor = codes[1 - victim]
    assert survivor is not None, "the surviving process hung"
    assert survivor == 4 if victim == 1 else survivor in (1, 4)
    info = store.list()[0]
    assert info.state == "crashed"
    if victim == 1:     # rank 0 lived to say why
        assert "another process of this run died" in info.error
    assert Trainer(run, stop_event=StopAfter(2)).run() == "stopped", "resumable"


def test_micro_batches_give_the_gradient_of_the_whole_batch_without_batch_norm():
    torch.manual_seed(0)
    x, y = torch.randn(30, 3, 32, 32), torch.randint(0, 10, (30,))
    grads = {}
    for n in (1, 4):     # 4 does not divide 30: slices of 8, 8, 7, 7
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(4 * 30 * 30, 10))
        step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.0), torch.device("cpu"))
        step.micro_batches = step.chunks = n
        loss, wrong = step(x, y, 0.0)
        grads[n] = ([p.grad.clone() for p in model.parameters()], float(loss), int(wrong))
    for a, b in zip(grads[1][0], grads[4][0]):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    assert grads[1][1] == pytest.approx(grads[4][1], abs=1e-6) and grads[1][2] == grads[4][2]


def test_micro_batches_resume_exactly(tmp_path):
    store = RunStore(tmp_path)
    cfg = tiny_config(epochs=2, deterministic=True, micro_batches=3, channels_last="off")
    ref, _ = train_run(store, cfg.with_overrides(name="ref"))
    run = store.create(cfg.with_overrides(name="cut"))
    assert Trainer(run, stop_event=StopAfter(5)).run() == "stopped"
    assert Trainer(run).run() == "finished"
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(run.checkpoint_path)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["micro_batches"] == 3 and ref.read_status()["micro_batches"] == 3
    assert ref.read_epochs()[-1]["test_loss"] == run.read_epochs()[-1]["test_loss"]


def test_shards_of_the_processes_make_up_the_global_batch():
    x = torch.arange(10 * 3 * 32 * 32, dtype=torch.int64).remainder(251).to(torch.uint8).view(10, 3, 32, 32)
    kw = dict(device="cpu", shuffle=True, augment=True, mean=torch.zeros(3, 1, 1), std=torch.ones(3, 1, 1), seed=3)
    whole = list(DeviceLoader(x, torch.arange(10), 7, **kw))       # batches of 7 and 3
    parts = []
    for first in (0, 2):                                            # 2 processes, 4 slices: 2 each
        loader = DeviceLoader(x, torch.arange(10), 7, **kw)
        loader.shard = (first, 2, 4)
        parts.append(list(loader))
    for i, (xb, yb) in enumerate(whole):
        assert torch.equal(torch.cat([p[i][0] for p in parts]), xb)
        assert torch.equal(torch.cat([p[i][1] for p in parts]), yb)
    assert [len(p[1][1]) for p in parts] == [2, 1]   # 3 images in 4 slices: 1, 1, 1, 0


def test_launch_checks_and_cli_refusals(tmp_path, capsys):
    from cli.main import main

    errors = check_launch(tiny_config(batch_size=30), 4, torch.device("cpu"))
    assert "does not divide among 4 processes" in errors["batch_size"] and "28 or 32" in errors["batch_size"]
    assert "needs GPUs" in check_launch(tiny_config(sync_bn=True, device="auto"), 1, torch.device("cpu"))["sync_bn"]
    for flags in (["--sync-bn", "--device", "cpu"], ["--micro-batches", "0"], ["--micro-batches", "64"]):
        code = main(["train", "--dataset", "synthetic", "--batch-size", "32", *flags, "--runs-dir", str(tmp_path)])
        assert code == 2, flags
    err = capsys.readouterr().err
    assert "--sync-bn: sync_bn needs GPUs" in err and "--micro-batches: micro_batches must be 1 to batch_size" in err
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_stop_request_ends_torchrun_cleanly_and_is_not_undone_by_a_restart(tmp_path):
    # torchrun takes a worker's non-zero exit for a failure: a traceback, exit 1 and, with --max-restarts, the
    # processes started again, which resumed the run the user had just stopped
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=100, channels_last="off"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--max-restarts",
           "1", str(ROOT / "tui_app.py"), "resume", run.id, "--runs-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def starts() -> int:
        return "\n".join(run.read_events()).count("data-parallel over 2")

    try:
        deadline = time.monotonic() + 90
        while run.read_status().get("step", 0) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        run.request("stop")
        deadline = time.monotonic() + 90
        while proc.poll() is None and starts() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)    # torchrun and its workers
        out = proc.communicate(timeout=30)[0]
    assert starts() == 1 and proc.returncode == 0, out
    assert run.read_status()["state"] == "stopped" and "resume with:" in out and "ChildFailedError" not in out


def test_a_launch_the_batch_does_not_fit_changes_nothing_in_an_existing_run(tmp_path):
    # torchrun --nproc-per-node 3 resume RUN --epochs 2 of a finished run with a batch of 32 made it 'failed'
    # (extended first), and each of the 3 processes printed the error
    store = RunStore(tmp_path)
    run, state = train_run(store, tiny_config(epochs=1, channels_last="off", name="done"))
    assert state == "finished"
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file() and p.name != "lock"}
    res = torchrun(3, "resume", run.id, "--epochs", "2", "--runs-dir", str(tmp_path), timeout=120)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert out.count("does not divide among 3 processes") == 1, out
    assert {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file() and p.name != "lock"} == before


def test_the_queue_never_starts_a_run_on_a_slot_its_batch_does_not_divide_among(tmp_path):
    store = RunStore(tmp_path)
    (run,) = Q.enqueue(store, [tiny_config(batch_size=32)])
    sched = S.Scheduler(store, make_slots(["cpu"] * 3, 1, 3))
    assert sched._slot_for(run, list(sched.slots)) is None and not sched._could_ever_fit(run)
    assert "does not divide among 3 processes" in (tmp_path / SC.LOG_FILE).read_text()
    sched = S.Scheduler(store, make_slots(["cpu"] * 2, 1, 2))
    assert sched._slot_for(run, list(sched.slots)) == sched.slots[0] and sched._could_ever_fit(run)
