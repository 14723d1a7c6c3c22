"""The second reading of the CUDA paths (issue 29): what of each defect a CPU can show. tests/gpu has the rest."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch
import torch.nn.functional as F

from core.store.runs import RunStore
from core.train import setup as setup_mod
from core.train.device import CONTEXT_BYTES, precision_note, shared_fraction
from core.train.requests import Requests
from core.train.step import TrainStep, cross_entropy
from core.train.trainer import Trainer
from tests.conftest import ROOT, tiny_config
from tests.core.train.test_distributed import ENV, _free_port, wait_all


class Counting(torch.nn.Module):
    """Stands in for the compiled module: counts the calls that reach it."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, x):
        self.calls += 1
        return self.net(x)


def small_step(graphs: bool, slices: int, precision: str = "fp32") -> tuple[TrainStep, Counting]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    compiled = Counting(net)
    step = TrainStep(net, opt, torch.device("cpu"), precision, compiled=compiled, batch_size=8, graphs=graphs)
    step.micro_batches = step.chunks = slices
    return step, compiled


def batch(n: int = 8):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 2, 2, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("graphs, slices, compiled_calls", [(True, 1, 1), (True, 2, 0), (False, 2, 2)])
def test_cuda_graphs_see_only_whole_batches(graphs, slices, compiled_calls):
    # reduce-overhead with micro-batches: the second slice's graph replay freed the first slice's gradients (in the
    # graph's pool) while they were being accumulated; slices run eager, default compile keeps them compiled
    step, compiled = small_step(graphs, slices)
    step(*batch(), lr=0.1)
    assert compiled.calls == compiled_calls


def test_a_second_compiled_net_in_one_process_starts_from_empty_caches(monkeypatch):
    # the app's in-process queue trains runs one after another: dynamo kept every earlier net's graphs (and CUDA graph
    # pools) and, past its cache limit for a class, silently ran eager. Dynamo with its eager backend: no inductor.
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    monkeypatch.setitem(setup_mod.COMPILE_MODES, "default", {"backend": "eager"})

    class Net(torch.nn.Module):
        def __init__(self, width: int):
            super().__init__()
            self.layers = torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(width)])

        def forward(self, x):
            return self.layers(x)

    for width in (1, 2):        # two architectures: the second's guards fail on the first's entry
        setup_mod.compile_net(Net(width), "default")(torch.randn(2, 4))
    assert len(_debug_get_cache_entry_list(Net.forward.__code__)) == 1
    torch._dynamo.reset()


def test_a_failed_step_retried_after_out_of_memory_under_fp16_trains(monkeypatch):
    # out-of-memory inside scaler.step (the momentum buffers' first allocation) left the optimizer marked unscaled,
    # and the retry raised "unscale_() has already been called on this optimizer since the last update()"
    step, _ = small_step(False, 1, precision="fp16")
    real, calls = step.optimizer.step, []

    def failing_once(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 MiB")
        return real(*a, **k)

    monkeypatch.setattr(step.optimizer, "step", failing_once)
    x, y = batch()
    with pytest.raises(torch.OutOfMemoryError):
        step(x, y, lr=0.1)
    step.reset_after_failure()
    loss, _ = step(x, y, lr=0.1)
    assert torch.isfinite(loss) and len(calls) == 2


def test_the_one_hot_loss_is_cross_entropy_value_and_gradient():
    torch.manual_seed(0)
    logits = torch.randn(16, 10, requires_grad=True)
    y = torch.randint(0, 10, (16,))
    a = F.cross_entropy(logits, y)
    (ga,) = torch.autograd.grad(a, logits)
    b = cross_entropy(logits, y, one_hot=True)
    (gb,) = torch.autograd.grad(b, logits)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(ga, gb, atol=1e-7)


def test_evaluation_out_of_memory_halves_the_batch_and_says_so(monkeypatch, tmp_path):
    s = setup_mod.build(tiny_config(), torch.device("cpu"))
    want = setup_mod.evaluate(s.model, s.test_loader)
    real = setup_mod.evaluate

    def small_memory(model, loader, *a, **k):
        if loader.batch_size > 40:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB")
        return real(model, loader, *a, **k)

    monkeypatch.setattr(setup_mod, "evaluate", small_memory)
    s.test_loader.rebatch(128)
    got = s.evaluate()["test"]
    assert s.test_loader.batch_size == 32 and got[1] == want[1] and got[0] == pytest.approx(want[0], rel=1e-6)
    assert s.notes == [f"out of memory in evaluation: evaluating in batches of {b}" for b in (64, 32)]


def test_n_shared_runs_leave_room_for_their_cuda_contexts():
    total = 80 * 2**30
    assert shared_fraction(1.0, total) == 1.0
    four = shared_fraction(0.25, total)
    assert four * 4 * total + 4 * CONTEXT_BYTES <= total and four > 0.2


def test_bf16_on_a_gpu_that_emulates_it_says_so(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    note = precision_note("bf16", torch.device("cuda", 0))
    assert "emulated" in note and "7.5" in note
    assert precision_note("fp32", torch.device("cuda", 0)) is None
    assert precision_note("bf16", torch.device("cpu")) is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    assert precision_note("bf16", torch.device("cuda", 0)) is None


def test_cublas_workspace_is_set_when_the_process_starts(tmp_path):
    # set by the trainer instead, after cuBLAS had started in an earlier run of the process: not deterministic
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    code = ("import os, sys, tui_app; tui_app.main(['runs', '--runs-dir', sys.argv[1]]); "
            "print('CUBLAS', os.environ.get('CUBLAS_WORKSPACE_CONFIG'))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert "CUBLAS :4096:8" in out.stdout, out.stdout + out.stderr


def test_ddp_wraps_without_the_deprecated_broadcast_buffers(monkeypatch):
    import torch.distributed as tdist

    from core.train.distributed import Dist

    tdist.init_process_group("gloo", rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{_free_port()}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            Dist(launched=True).wrap(torch.nn.Linear(2, 2), sync_bn=False)
    finally:
        tdist.destroy_process_group()


# -- a stop asked of a run whose process died before obeying -----------------------------------------------------------
def test_a_recent_stop_of_a_running_run_is_obeyed_by_the_process_that_takes_over(tmp_path):
    # torchrun's restart (and the scheduler's retry) cleared the request file at start and trained on
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=50))
    run.update_status(state="running")
    run.request("stop")
    assert Trainer(run).run() == "stopped"
    assert run.read_status()["step"] <= 4 and "stop requested before this process took over" in \
        "\n".join(run.read_events())


def test_an_old_or_foreign_request_is_dropped_at_start(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny_config())
    run.request("stop")
    Requests(run).take_over("stopped")          # asked of a run that was not running: stale
    assert run.read_request() is None
    run.request("stop")
    old = time.time() - 3600
    os.utime(run.request_path, (old, old))
    r = Requests(run)
    r.take_over("running")                      # an hour old: from before a crash the user now resumes
    assert not r.stop_event.is_set() and run.read_request() is None


# -- DDP: the cause of a rank's failure, and no worker outliving torchrun ----------------------------------------------
def _failing_rank(rank: int, port: int, runs: str, run_id: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), RESLAB_DIST_TIMEOUT_S="60")
    torch.set_num_threads(1)
    from core.train import step as step_mod
    from core.train.distributed import process_group

    if rank == 1:
        real = step_mod.TrainStep.__call__

        def broken(self, x, y, lr, total=None):
            if getattr(self, "_n", 0) >= 3:
                raise RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasSgemm")
            self._n = getattr(self, "_n", 0) + 1
            return real(self, x, y, lr, total)
        step_mod.TrainStep.__call__ = broken
    with process_group("cpu") as dist:
        Trainer(RunStore(runs).get(run_id), dist=dist).run()
    os._exit(0)


def test_the_failure_of_another_rank_is_recorded_with_its_cause(tmp_path):
    # rank 0 recorded "crashed: another process of this run died" (and under NCCL's default error handling it was
    # killed before it wrote anything): it records what the failing process said
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=50, channels_last="off", log_every=2))
    ctx = multiprocessing.get_context("fork")
    port = _free_port()
    procs = [ctx.Process(target=_failing_rank, args=(r, port, str(tmp_path), run.id)) for r in (0, 1)]
    for p in procs:
        p.start()
    assert None not in wait_all(procs, 120), "a process hung"
    status = run.read_status()
    assert status["state"] == "failed", status
    assert "process 1 of 2" in status["error"] and "CUBLAS_STATUS_EXECUTION_FAILED" in status["error"]


def test_no_torchrun_worker_outlives_a_killed_torchrun(tmp_path):
    # torchrun starts its workers in sessions of their own: killing torchrun (or its process group) left them training
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=500, channels_last="off"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(ROOT / "tui_app.py"), "resume", run.id, "--runs-dir", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while run.read_status().get("step", 0) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        worker = run.read_status()["pid"]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 90
        while _alive(worker):
            assert time.monotonic() < deadline, "a worker kept training after torchrun was killed"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert run.read_status()["state"] in ("stopped", "crashed")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False
