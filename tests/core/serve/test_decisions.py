"""The scheduler's decisions as pure functions (issue 17.6) and the GPU facts they rest on (issue 19.1, 19.5, 19.6),
on the CPU: a table per function, and a stand-in NVML (``FakeNvml``) for a machine with GPUs."""
from __future__ import annotations

import subprocess
import sys
import threading
import types

import pytest

from core.serve import gpus
from core.serve.decisions import Action, next_action
from core.serve.launch import child_env
from core.serve.slots import Slot, make_slots, sharing, slot_threads
from tests.conftest import ROOT

OWN = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "RESLAB_DEVICE": "", "RESLAB_GPU_SHARED": ""}


@pytest.mark.parametrize("slot, threads, shared, parent, expected", [
    # a GPU child always gets CUDA_VISIBLE_DEVICES, and trains on cuda:0 whatever its config names (cuda:2 too)
    ("cuda:2", 0, 1, {}, {"CUDA_VISIBLE_DEVICES": "2", "RESLAB_DEVICE": "cuda:0"}),
    ("cuda:0", 7, 1, {}, {"CUDA_VISIBLE_DEVICES": "0", "RESLAB_DEVICE": "cuda:0", "OMP_NUM_THREADS": "7"}),
    # our own CUDA_VISIBLE_DEVICES (indices or UUIDs) is the base: our cuda:1 is the machine's GPU 5
    ("cuda:1", 0, 1, {"CUDA_VISIBLE_DEVICES": "4,5"}, {"CUDA_VISIBLE_DEVICES": "5", "RESLAB_DEVICE": "cuda:0"}),
    ("cuda:0", 0, 1, {"CUDA_VISIBLE_DEVICES": "GPU-8f3a"}, {"CUDA_VISIBLE_DEVICES": "GPU-8f3a",
                                                           "RESLAB_DEVICE": "cuda:0"}),
    # --per-device 4: a quarter of the memory each, and the GPU marked shared (no channels_last probe there)
    ("cuda:0", 3, 4, {}, {"CUDA_VISIBLE_DEVICES": "0", "RESLAB_DEVICE": "cuda:0", "OMP_NUM_THREADS": "3",
                          "RESLAB_GPU_SHARED": "4", "RESLAB_MEMORY_FRACTION": "0.2500"}),
    ("cuda:0", 0, 2, {"RESLAB_MEMORY_FRACTION": "0.3"}, {"CUDA_VISIBLE_DEVICES": "0", "RESLAB_DEVICE": "cuda:0",
                                                         "RESLAB_GPU_SHARED": "2"}),   # told otherwise: kept
    # a torchrun slot: both GPUs shown, LOCAL_RANK picks; the threads split among its processes
    ("cuda:0+cuda:1", 8, 1, {}, {"CUDA_VISIBLE_DEVICES": "0,1", "OMP_NUM_THREADS": "4"}),
    # a CPU slot: no GPU at all
    ("cpu", 5, 2, {}, {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "5"}),
    ("cpu+cpu", 5, 1, {}, {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "2"}),
])
def test_child_env(slot, threads, shared, parent, expected):
    assert child_env(slot, threads, shared, parent) == {**OWN, **expected}


@pytest.mark.parametrize("state, used, retries, micro, batch, expected", [
    ("running", 0, 2, 1, 128, Action("release")),        # resumed by hand meanwhile: not ours any more
    ("paused", 5, 2, 1, 128, Action("release")),
    ("crashed", 0, 2, 1, 128, Action("retry")),
    ("crashed", 1, 2, 1, 128, Action("retry")),
    ("crashed", 2, 2, 1, 128, Action("give-up")),
    ("queued", 0, 2, 1, 128, Action("retry")),           # died before it started training
    ("damaged", 0, 0, 1, 128, Action("give-up")),
    ("out-of-memory", 0, 2, 1, 128, Action("oom", 2)),    # each out-of-memory doubles the micro-batches
    ("out-of-memory", 2, 2, 4, 128, Action("oom", 8)),    # crash retries do not count against it
    ("out-of-memory", 0, 2, 64, 128, Action("oom", 128)),
    ("out-of-memory", 0, 2, 128, 128, Action("settle")),  # one image per slice already
    ("failed", 0, 2, 1, 128, Action("settle")),
    ("diverged", 0, 2, 1, 128, Action("settle")),
    ("stopped", 0, 2, 1, 128, Action("settle")),
    ("finished", 0, 2, 1, 128, Action("settle")),
])
def test_next_action(state, used, retries, micro, batch, expected):
    assert next_action(state, used, retries, micro, batch) == expected


@pytest.mark.parametrize("devices, per, cpus, expected", [
    (["cpu"], 1, 8, (7, 7)),
    (["cpu", "cpu"], 1, 8, (3, 7)),
    (["cuda:0", "cuda:1"], 1, 16, (15, 7)),              # GPU children get a share too, not all cores each
    (["cuda:0"], 4, 16, (15, 3)),
    (["cuda:0", "cpu"], 2, 9, (4, 4)),
    (["cuda:0"], 1, 1, (1, 1)),
])
def test_slot_threads(devices, per, cpus, expected):
    assert slot_threads(make_slots(devices, per), cpus) == expected


def test_sharing_counts_the_slots_of_each_device():
    assert sharing(make_slots(["cuda:0", "cuda:1"], 3)) == {"cuda:0": 3, "cuda:1": 3}
    assert sharing([Slot("cuda:0+cuda:1", 0)]) == {"cuda:0+cuda:1": 1}


# -- NVML --------------------------------------------------------------------------------------------------------------
class NVMLError(Exception):
    pass


class FakeNvml(types.ModuleType):
    """pynvml for a machine with these GPUs: (uuid, compute mode) in PCI bus order."""

    NVML_COMPUTEMODE_DEFAULT, NVML_COMPUTEMODE_EXCLUSIVE_THREAD = 0, 1
    NVML_COMPUTEMODE_PROHIBITED, NVML_COMPUTEMODE_EXCLUSIVE_PROCESS = 2, 3
    NVML_TEMPERATURE_GPU = 0
    NVMLError = NVMLError

    def __init__(self, devices: list[tuple[str, int]]):
        super().__init__("pynvml")
        self.devices = devices

    def nvmlInit(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        if not 0 <= i < len(self.devices):
            raise NVMLError("Invalid Argument")
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid):
        for i, (u, _) in enumerate(self.devices):
            if u.lower() == uuid.lower():
                return i
        raise NVMLError("Not Found")

    def nvmlDeviceGetUUID(self, h):
        return self.devices[h][0]

    def nvmlDeviceGetComputeMode(self, h):
        return self.devices[h][1]

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H200"

    def nvmlDeviceGetMemoryInfo(self, h):
        return types.SimpleNamespace(used=2**30, total=141 * 2**30)

    def nvmlDeviceGetUtilizationRates(self, h):
        return types.SimpleNamespace(gpu=50)

    def nvmlDeviceGetTemperature(self, h, sensor):
        return 60


UUIDS = ["GPU-aaaa1111-0000-0000-0000-000000000000", "GPU-bbbb2222-0000-0000-0000-000000000000",
         "GPU-cccc3333-0000-0000-0000-000000000000"]


@pytest.fixture
def nvml(monkeypatch):
    """Three H200s; GPU 1 in EXCLUSIVE_PROCESS mode. torch sees as many GPUs as CUDA_VISIBLE_DEVICES shows."""
    fake = FakeNvml([(UUIDS[0], 0), (UUIDS[1], 3), (UUIDS[2], 0)])
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setitem(gpus._nvml_state, "ok", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def visible() -> int:
        import os
        shown = os.environ.get("CUDA_VISIBLE_DEVICES")
        return 3 if shown is None else len([e for e in shown.split(",") if e.strip()])
    monkeypatch.setattr(gpus, "gpu_count", visible)
    return fake


def test_exclusive_process_gpus_are_named_through_nvml(nvml, monkeypatch):
    assert gpus.exclusive_gpus(["cuda:0", "cuda:1", "cuda:2", "cpu"]) == ["cuda:1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1")          # our cuda:1 is the machine's GPU 1
    assert gpus.exclusive_gpus(["cuda:0", "cuda:1"]) == ["cuda:1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", UUIDS[1])
    assert gpus.exclusive_gpus(["cuda:0"]) == ["cuda:0"]


def test_the_scheduler_refuses_to_share_an_exclusive_process_gpu(nvml, tmp_path, capsys):
    from cli.main import main

    code = main(["scheduler", "--devices", "cuda:0,cuda:1", "--per-device", "2", "--runs-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and "--per-device: cuda:1 is in EXCLUSIVE_PROCESS compute mode" in err and "--per-device 1" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("visible, nvml_index, expected", [
    (None, 2, "cuda:2"),                 # every GPU, PCI bus order on both sides
    ("2,0", 2, "cuda:0"),
    ("2,0", 0, "cuda:1"),
    ("2,0", 1, None),                    # hidden from this process
    (f"{UUIDS[2][:12]},0", 2, "cuda:0"),  # a UUID prefix, as CUDA accepts
    ("GPU-ffff", 2, None),
    ("", 0, None),
])
def test_cuda_label(visible, nvml_index, expected):
    env = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert gpus.cuda_label(nvml_index, UUIDS[nvml_index], env) == expected


def test_readings_name_each_gpu_as_torch_here_does(nvml, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    readings = gpus.read_gpus()
    assert [(g.index, g.uuid, g.cuda) for g in readings] == [(0, UUIDS[0], None), (1, UUIDS[1], None),
                                                             (2, UUIDS[2], "cuda:0")]


def test_devices_takes_gpu_uuids(nvml, monkeypatch):
    assert gpus.parse_devices(f"{UUIDS[2]},cuda:0") == ["cuda:2", "cuda:0"]
    assert gpus.parse_devices(UUIDS[1][:8].upper()) == ["cuda:1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"2,{UUIDS[0]}")
    assert gpus.parse_devices(UUIDS[0]) == ["cuda:1"] and gpus.parse_devices(UUIDS[2]) == ["cuda:0"]
    with pytest.raises(ValueError, match="not the UUID of a GPU visible here"):
        gpus.parse_devices(UUIDS[1])
    with pytest.raises(ValueError, match="matches several GPUs"):
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
        gpus.parse_devices("GPU-")
    with pytest.raises(ValueError, match="MIG-"):
        gpus.parse_devices("MIG-1234")


def test_tui_app_numbers_gpus_in_pci_bus_order_before_torch_loads(tmp_path):
    code = ("import os, sys; os.environ['CUDA_DEVICE_ORDER'] = 'FASTEST_FIRST'; import tui_app; "
            "tui_app.main(['runs', '--runs-dir', sys.argv[1]]); "
            "print(os.environ['CUDA_DEVICE_ORDER'])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "PCI_BUS_ID"


@pytest.mark.parametrize("version, ok", [("2.5.0", True), ("2.5.1+cu124", True), ("2.14.1+cu130", True),
                                         ("3.0.0", True), ("2.4.1+cu121", False), ("2.2.0", False),
                                         ("1.13.1", False), ("2.6.0.dev20241001+cu124", True), ("weird", True)])
def test_torch_version_problem(version, ok):
    from core.util.env import torch_version_problem

    problem = torch_version_problem(version)
    assert (problem is None) is ok
    if not ok:
        assert problem == f"ResLab needs torch 2.5 or newer, this is torch {version}: pip install -U 'torch>=2.5'"


@pytest.mark.parametrize("where", ["version.py", "metadata"])
def test_an_old_torch_is_named_at_start_in_one_line(monkeypatch, capsys, tmp_path, where):
    """On torch 2.2-2.4 every run failed while being built (torch.OutOfMemoryError is 2.5's). Its version is read
    from torch/version.py without importing torch, or from its metadata where that file is not there."""
    import importlib.machinery
    import importlib.util
    from importlib import metadata

    import tui_app

    folder = tmp_path / "site" / "torch"
    folder.mkdir(parents=True)
    if where == "version.py":
        (folder / "version.py").write_text("from typing import Optional\n__version__ = '2.4.1+cu121'\ncuda = '12.1'\n")
    spec = importlib.machinery.ModuleSpec("torch", None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec if name == "torch" else None)
    monkeypatch.setattr(metadata, "version", lambda name: "2.4.1+cu121" if name == "torch" else "1")
    assert tui_app.main(["runs", "--runs-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs torch 2.5 or newer, this is torch 2.4.1+cu121" in err


def test_the_torch_version_is_read_without_importing_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, tui_app; print(tui_app._torch_problem(), "
                          "'torch' in sys.modules)"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.split() == ["None", "False"], out.stderr


# -- Slurm (issue 19.8) ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state, used, expected", [
    ("running", 0, Action("retry")),        # its job was killed at the time limit with a fresh heartbeat
    ("paused", 2, Action("give-up")),
    ("stopped", 0, Action("settle")),       # checkpointed before the limit (the job is requeued, not ended)
    ("finished", 0, Action("settle")),
])
def test_next_action_when_the_job_that_trained_the_run_is_gone(state, used, expected):
    assert next_action(state, used, 2, 1, 128, gone=True) == expected


def test_a_slurm_job_asks_for_cpus_and_memory_and_checkpoints_within_the_signal_delay(tmp_path):
    pytest.importorskip("submitit")
    from core.serve import slurm
    from core.store.runs import RunStore
    from tests.conftest import tiny_config

    assert slurm.CHECKPOINT_WAIT_S + 15 <= slurm.SIGNAL_DELAY_S
    run = RunStore(tmp_path).create(tiny_config(device="cuda"))
    params = slurm.SubmititLauncher("slurm", gpus_per_run=2).parameters(run)
    assert params["cpus_per_task"] == 8 and params["mem_gb"] == 32 and params["gpus_per_node"] == 2
    params = slurm.SubmititLauncher("slurm", cpus_per_task=4, mem_gb_per_task=6).parameters(run)
    assert params["cpus_per_task"] == 4 and params["mem_gb"] == 6


def test_a_task_bound_to_one_gpu_trains_on_it_whatever_its_local_rank(monkeypatch):
    import torch

    from core.train.device import DeviceError
    from core.train.distributed import Dist, resolve_launch_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    second = Dist(1, 2, 1, launched=True)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(DeviceError, match="only 1 GPU"):         # torchrun with too few GPUs: refused, as before
        resolve_launch_device("cuda", second)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert resolve_launch_device("cuda", second) == torch.device("cuda", 0)


def test_the_heartbeat_goes_on_during_a_long_step():
    import time

    from core.train.pace import beating

    beats, beater = [], []
    with beating(lambda: beats.append(time.monotonic()) or beater.append(threading.current_thread()), every_s=0.02):
        deadline = time.monotonic() + 5
        while len(beats) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    # and stops with the block: leaving it joins the heartbeat's thread, so no beat can come later
    assert not beater[0].is_alive()
