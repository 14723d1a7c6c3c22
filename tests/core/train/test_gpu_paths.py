"""The CUDA paths' logic, tested on the CPU (issue 19): what can be separated from the hardware is a pure function
or runs against a stand-in for torch.cuda. What only a GPU can show is in tests/gpu (the ``gpu`` tier)."""
from __future__ import annotations

import pytest
import torch

import core.train.trainer as trainer_mod
from core.store.runs import RunStore
from core.train import checkpoint
from core.train.device import native_bf16, resolve_precision, rng_state, set_rng_state
from core.train.models import cifar_resnet
from core.train.pace import RunClock
from core.train.step import StepWindow
from core.train.trainer import Trainer, train_run
from tests.conftest import tiny_config
from tests.core.train.test_trainer import StopAfter


class FakeCudaRng:
    """torch.cuda's RNG functions on a machine with ``visible`` GPUs: records what is set where."""

    def __init__(self, monkeypatch, visible: int):
        self.set: list[tuple[int, torch.Tensor]] = []
        self.visible = visible
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: visible)
        monkeypatch.setattr(torch.cuda, "set_rng_state", self.set_rng_state)
        monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device=None: torch.full((8,), 7, dtype=torch.uint8))

    def set_rng_state(self, state, device="cuda"):
        index = torch.device(device).index or 0
        if index >= self.visible:
            raise IndexError(f"cuda:{index} is not visible")
        self.set.append((index, state))


def four_gpu_states() -> list[torch.Tensor]:
    return [torch.full((8,), i, dtype=torch.uint8) for i in range(4)]


@pytest.mark.parametrize("device, expected", [("cuda:0", 0), ("cuda", 0), ("cuda:2", 2)])
def test_a_checkpoint_of_a_four_gpu_process_resumes_where_fewer_gpus_are_visible(monkeypatch, device, expected):
    """Written by a process that saw 4 GPUs (the app, a 4-GPU torchrun), resumed by one that sees 1 (a scheduler's
    child, a Slurm task) or all 4: the training device's state goes back, nothing indexes past the visible GPUs."""
    fake = FakeCudaRng(monkeypatch, visible=1 if expected == 0 else 4)
    state = {**rng_state(torch.device("cpu")), "cuda": four_gpu_states()}
    set_rng_state(state, torch.device(device))
    assert len(fake.set) == 1 and fake.set[0][0] == expected and int(fake.set[0][1][0]) == expected


def test_a_new_checkpoint_keeps_the_training_devices_cuda_state_only(monkeypatch):
    assert rng_state(torch.device("cpu"))["cuda"] is None
    fake = FakeCudaRng(monkeypatch, visible=1)
    saved = rng_state(torch.device("cuda:0"))
    assert isinstance(saved["cuda"], torch.Tensor)
    set_rng_state(saved, torch.device("cuda:0"))
    set_rng_state(saved, torch.device("cpu"))      # resumed on the CPU: the CUDA state is not needed there
    assert [i for i, _ in fake.set] == [0]


def test_a_run_whose_checkpoint_holds_a_list_of_gpu_states_resumes_to_the_end(tmp_path):
    """A checkpoint as a 4-GPU machine wrote it (rng.cuda a list of four states) resumes on this CPU."""
    run = RunStore(tmp_path).create(tiny_config(epochs=1))
    assert Trainer(run, stop_event=StopAfter(3)).run() == "stopped"
    ckpt = checkpoint.load_checkpoint(run.checkpoint_path)
    ckpt["rng"]["cuda"] = four_gpu_states()
    checkpoint._atomic_torch_save(ckpt, run.checkpoint_path)
    assert Trainer(run).run() == "finished"


@pytest.mark.parametrize("capability, native", [((6, 1), False), ((7, 0), False), ((7, 5), False), ((8, 0), True),
                                                ((8, 6), True), ((9, 0), True), ((10, 0), True)])
def test_precision_auto_picks_bf16_only_on_gpus_that_compute_in_it(monkeypatch, capability, native):
    """V100 (7.0) and T4 (7.5) say is_bf16_supported() through emulation, which is slower than fp32 there."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert native_bf16(capability) is native
    assert resolve_precision("auto", torch.device("cuda:1")) == ("bf16" if native else "fp32")
    assert resolve_precision("fp16", torch.device("cuda:1")) == "fp16"
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_the_model_pools_without_adaptive_avg_pool2d(monkeypatch):
    """Its CUDA backward is nondeterministic (deterministic=True only warned); the mean over H, W is the same."""
    model = cifar_resnet(8, width=4)
    x = torch.randn(4, 3, 32, 32)
    features = {}
    model.layer3.register_forward_hook(lambda m, a, out: features.setdefault("x", out))
    reference = model.fc(torch.nn.functional.adaptive_avg_pool2d(model.layer3(model.layer2(model.layer1(
        torch.relu(model.bn1(model.conv1(x)))))), 1).flatten(1))

    def refuse(*a, **k):
        raise AssertionError("adaptive_avg_pool2d used")
    monkeypatch.setattr(torch.nn.functional, "adaptive_avg_pool2d", refuse)
    out = model(x)
    out.sum().backward()
    torch.testing.assert_close(out, reference)


def test_the_last_window_of_an_epoch_is_read_after_the_device_sync(tmp_path, monkeypatch):
    """Reading the epoch's last window before the device is synchronised read zeros or stale values on a GPU."""
    order: list[str] = []
    monkeypatch.setattr(trainer_mod, "sync_device", lambda device: order.append("sync"))
    real_drain = StepWindow.drain

    def drain(self, keep=0):
        rows = real_drain(self, keep)
        order.append(f"drain{keep}:{len(rows)}")
        return rows
    monkeypatch.setattr(StepWindow, "drain", drain)
    run, state = train_run(RunStore(tmp_path), tiny_config(epochs=1, log_every=4))   # 8 iterations, 2 windows
    assert state == "finished"
    assert "sync" in order
    after = order[order.index("sync") + 1:]
    assert after and after[0].startswith("drain0:") and after[0] != "drain0:0", order


def test_the_run_clock_leaves_out_pauses_and_measures_the_speed():
    t = [100.0]
    clock = RunClock(batch_size=10, now=lambda: t[0])
    clock.start_epoch(seconds_so_far=5.0)           # a resumed epoch: 5 s trained before the stop
    assert clock.epoch_seconds() == 5.0
    for _ in range(2):
        t[0] += 1.0
        clock.tick()
    assert not clock.measure() and clock.rate is None       # fewer than 3 iterations: no speed yet
    t[0] += 1.0
    clock.tick()
    assert clock.measure() and clock.rate == pytest.approx(10.0)   # 3 iterations of 10 images in 3 s
    assert not clock.measure()                               # "first time" only once
    assert clock.epoch_seconds() == pytest.approx(8.0)
    t[0] += 60.0                                             # a pause of 60 s
    clock.resume_after(60.0)
    assert clock.epoch_seconds() == pytest.approx(8.0) and clock.seg_steps == 0
    clock.last_eval_s = 2.0
    assert clock.eta(steps_left=100, epochs_left=3) == pytest.approx(100 * 10 / 10.0 + 6.0)
    clock.start_epoch()
    assert clock.epoch_seconds() == 0.0


# -- out of memory (issue 19.4) ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("exc, oom", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
    (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), True),
    (RuntimeError("CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`"), True),
    (RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x16 and 32x10)"), False),
    (ValueError("CUDNN_STATUS_ALLOC_FAILED"), False),
])
def test_allocation_failures_of_cuda_libraries_are_out_of_memory(exc, oom):
    from core.train.device import is_out_of_memory

    assert is_out_of_memory(exc) is oom


def small_memory(monkeypatch, error: Exception, keep: list | None = None):
    """The model fails batches over 8 images with ``error`` (as a GPU with little memory would)."""
    import weakref

    import core.train.setup as setup_mod

    real = setup_mod.create_model

    def resnet(*a, **kw):
        model = real(*a, **kw)

        def hook(module, args):
            if args[0].shape[0] > 8:
                scratch = torch.empty(1000)         # what the failed step had allocated
                if keep is not None:
                    keep.append(weakref.ref(scratch))
                raise type(error)(*error.args)     # a new one each time, as torch raises
        model.register_forward_pre_hook(hook)
        return model
    monkeypatch.setattr(setup_mod, "create_model", resnet)


def test_a_cudnn_allocation_failure_splits_the_batch_like_an_out_of_memory(tmp_path, monkeypatch):
    small_memory(monkeypatch, RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"))
    run, state = train_run(RunStore(tmp_path), tiny_config(epochs=1, max_test_images=8, batch_size=32))
    assert state == "finished" and run.read_status()["micro_batches"] == 4


def test_memory_is_released_after_the_except_block_when_nothing_holds_the_failed_step(tmp_path, monkeypatch):
    """empty_cache() inside the except block returned nothing: the traceback still held the step's tensors."""
    import sys

    from core.train.device import release_memory

    held, seen = [], []

    def release(device):
        release_memory(device)
        seen.append((sys.exc_info()[0], [ref() is None for ref in held]))
    monkeypatch.setattr(trainer_mod, "release_memory", release)
    small_memory(monkeypatch, torch.OutOfMemoryError("CUDA out of memory"), held)
    run, state = train_run(RunStore(tmp_path), tiny_config(epochs=1, max_test_images=8, batch_size=32))
    assert state == "finished" and seen
    assert all(handling is None and all(freed) for handling, freed in seen), seen


class FakeStore:
    """The process group's key-value store (torch.distributed.Store's set/check/get)."""

    def __init__(self):
        self.data: dict[str, bytes] = {}

    def set(self, key, value):
        self.data[key] = value.encode() if isinstance(value, str) else value

    def check(self, keys):
        return all(k in self.data for k in keys)

    def get(self, key):
        return self.data[key]


def test_rank_0_records_out_of_memory_when_another_process_ran_out_and_left():
    """Under DDP an out-of-memory on one process reached rank 0 as a lost peer: 'crashed', retried as a crash and
    never split. The process that runs out says so first; rank 0 reads it when the group breaks."""
    from core.train.distributed import Dist, end_of

    store = FakeStore()
    rank0, rank1 = (Dist(rank, 2, rank, launched=True, store=store) for rank in (0, 1))
    lost = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer")
    assert end_of(lost, rank0)[0] == "crashed"
    rank1.tell("out-of-memory: out of memory on process 1 of 2; resume with --micro-batches 4")
    assert rank1.told() == (-1, "")                  # its own note is not news to it
    state, message = end_of(lost, rank0)
    assert state == "out-of-memory" and message.startswith("process 1 of 2: out of memory on process 1")
    assert end_of(torch.OutOfMemoryError("CUDA out of memory"), rank0)[0] == "out-of-memory"
    assert end_of(ValueError("bad"), rank0) == ("failed", "ValueError: bad")


# -- DDP (issue 19.7) --------------------------------------------------------------------------------------------------
class AgreeingDist:
    """Dist as one of two processes sees it: ``agree`` is the collective (recorded); the peer asks ``peer``."""

    many, world = True, 2

    def __init__(self, rank: int, peer: tuple[bool, bool] = (False, False)):
        self.rank, self.is_main, self.peer, self.calls = rank, rank == 0, peer, 0

    def agree(self, stop: bool, pause: bool) -> tuple[bool, bool]:
        self.calls += 1
        return stop or self.peer[0], (pause if self.is_main else self.peer[1])


class NoRequests:
    def read_request(self):
        return None


def test_ddp_processes_agree_on_requests_only_when_a_window_is_sealed():
    """A blocking all-reduce every iteration was a host barrier per step; a request now waits for the next sealed
    window, and no process acts on it alone before the others agree."""
    from core.train.requests import Requests

    dist = AgreeingDist(rank=1)
    requests = Requests(NoRequests(), dist)
    requests.stop_event.set()                        # SIGTERM on this process
    for _ in range(3):
        requests.check(sealed=False)
    assert dist.calls == 0 and not requests.stopping   # not alone, not yet
    requests.check(sealed=True)
    assert dist.calls == 1 and requests.stopping

    main = Requests(NoRequests(), AgreeingDist(rank=0))
    main.pause_event.set()                           # the TUI's pause, on rank 0
    main.check(sealed=False)
    assert not main.paused
    main.check(sealed=True)
    assert main.paused
    follower = Requests(NoRequests(), AgreeingDist(rank=1, peer=(False, True)))
    follower.check(sealed=True)
    assert follower.paused and not follower.stopping


def test_ddp_does_not_broadcast_buffers_before_every_forward(tmp_path):
    """Rank 0's batch-norm statistics are synchronised before each evaluation (Dist.sync_buffers); DDP's own
    broadcast per forward was a second, needless collective each step."""
    import torch.distributed as tdist

    from core.train.distributed import Dist

    tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = Dist(0, 1, 0, launched=True).wrap(cifar_resnet(8, width=4), sync_bn=False)
        assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel) and ddp.broadcast_buffers is False
    finally:
        tdist.destroy_process_group()


# -- several runs on one GPU, the scheduler's children (issue 19.1, 19.5) -------------------------------------------
def test_a_scheduler_child_trains_on_the_one_gpu_it_sees_whatever_its_config_names(monkeypatch):
    """A run configured cuda:2 on the slot of GPU 2: its process sees that GPU only, as cuda:0."""
    from core.train.device import DeviceError
    from core.train.distributed import SINGLE, resolve_launch_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.delenv("RESLAB_DEVICE", raising=False)
    with pytest.raises(DeviceError):
        resolve_launch_device("cuda:2", SINGLE)
    monkeypatch.setenv("RESLAB_DEVICE", "cuda:0")
    assert resolve_launch_device("cuda:2", SINGLE) == torch.device("cuda", 0)
    assert resolve_launch_device("cpu", SINGLE) == torch.device("cpu")


def test_each_of_n_runs_on_a_gpu_takes_its_share_of_the_memory(monkeypatch):
    from core.train.device import use_device

    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(("set_device", d)))
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d=None: calls.append((f, d)))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: type("P", (), {"total_memory": 80 * 2**30}))
    cuda1 = torch.device("cuda", 1)
    use_device(cuda1)
    assert calls == [("set_device", cuda1)]
    calls.clear()
    monkeypatch.setenv("RESLAB_MEMORY_FRACTION", "0.25")
    use_device(cuda1)
    # a quarter of the GPU less one CUDA context (which the allocator's fraction does not cover)
    assert calls == [("set_device", cuda1), (pytest.approx(0.25 - 0.75 / 80), cuda1)]
    calls.clear()
    use_device(torch.device("cpu"))
    assert calls == []


def test_the_channels_last_probe_neither_runs_nor_caches_on_a_shared_gpu(monkeypatch):
    from core.store.settings import cache_dir
    from core.train import memory_format

    monkeypatch.setenv("RESLAB_GPU_SHARED", "4")
    monkeypatch.setattr(memory_format, "measure_channels_last", lambda *a, **k: pytest.fail("probe ran"))
    cache = cache_dir() / memory_format.CACHE_FILE
    before = cache.read_bytes() if cache.exists() else None
    choice, note = memory_format.choose_channels_last(tiny_config(channels_last="auto", device="cuda"),
                                                      cifar_resnet(8, width=4), torch.device("cuda", 0), "bf16")
    assert choice is False and "this GPU trains 4 runs at once" in note
    assert (cache.read_bytes() if cache.exists() else None) == before
