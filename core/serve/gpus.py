"""The devices a scheduler can place runs on, and live GPU readings through NVML (nvidia-ml-py's ``pynvml``).

Device names are torch's: ``cpu`` and ``cuda:N``, where N counts the GPUs this process can see (so with
``CUDA_VISIBLE_DEVICES=2,3`` set, ``cuda:0`` is physical GPU 2; :func:`cuda_visible_for` maps it back). NVML counts
every GPU of the machine in PCI bus order; CUDA counts fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, which
tui_app.py sets before torch loads (and the scheduler for its trainer processes), so that both agree. A GPU's
reading names it as this process's torch does (:func:`cuda_label`: by index or by UUID through
CUDA_VISIBLE_DEVICES); ``--devices`` also takes GPU UUIDs (``GPU-...``, as ``nvidia-smi -L`` prints them). Without
an NVIDIA driver :func:`read_gpus` returns None: the machine is "CPU only".
"""
from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass


def gpu_count() -> int:
    """CUDA GPUs torch can use here (0 without CUDA). Imports torch, but does not initialise CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_devices() -> list[str]:
    """Every visible GPU, else the CPU."""
    n = gpu_count()
    return [f"cuda:{i}" for i in range(n)] if n else ["cpu"]


def parse_devices(text: str | None) -> list[str]:
    """'cuda:0,cuda:2' or 'cpu,cpu' (a device listed twice gets two slots); 'cuda' means every GPU; empty or
    'auto' means :func:`default_devices`. Raises ValueError naming what is wrong and what is allowed."""
    parts = [p.strip().lower() for p in re.split(r"[,\s]+", text or "") if p.strip()]
    if text and text.strip() and not parts:       # ',' is a typo, not "every GPU"
        raise ValueError(f"no device in {text!r}; give devices such as cpu or cuda:0,cuda:1")
    parts = [uuid_to_cuda(p) if p.startswith(UUID_PREFIXES) else p for p in parts]
    if not parts or parts == ["auto"]:
        return default_devices()
    out: list[str] = []
    n = None
    for part in parts:
        m = re.fullmatch(r"cuda(?::(\d+))?|(\d+)", part)
        if part == "cpu":
            out.append("cpu")
            continue
        if not m:
            raise ValueError(f"unknown device {part!r}; use cpu, cuda (every GPU) or cuda:N, e.g. cuda:0,cuda:2")
        n = gpu_count() if n is None else n
        if n == 0:
            raise ValueError(f"{part} asked for, but no CUDA GPU is visible here; use cpu")
        index = m.group(1) or m.group(2)
        if index is None:
            out.extend(f"cuda:{i}" for i in range(n))
        elif int(index) >= n:
            raise ValueError(f"{part} asked for, but only {n} GPU(s) are visible here (cuda:0 to cuda:{n - 1})")
        else:
            out.append(f"cuda:{int(index)}")
    return out


UUID_PREFIXES = ("gpu-", "mig-")


def uuid_to_cuda(uuid: str, env: dict[str, str] | None = None) -> str:
    """``GPU-...``/``MIG-...`` (or its first characters, as CUDA accepts) -> the ``cuda:N`` torch calls it here.
    Raises ValueError when no visible GPU has that UUID."""
    env = os.environ if env is None else env
    want = uuid.strip().lower()
    if "CUDA_VISIBLE_DEVICES" in env:
        entries = [e.strip().lower() for e in env["CUDA_VISIBLE_DEVICES"].split(",") if e.strip()]
        uuids = {i: e for i, e in enumerate(entries) if e.startswith(UUID_PREFIXES)}
        uuids.update({i: u for i, u in enumerate(_nvml_uuids(entries)) if u})
    else:
        uuids = dict(enumerate(_nvml_uuids(None)))
    found = [i for i, u in uuids.items() if u and u.lower().startswith(want)]
    if len(found) != 1:
        why = "matches several GPUs" if found else "is not the UUID of a GPU visible here"
        raise ValueError(f"{uuid} {why}; nvidia-smi -L lists them (GPU-...; MIG-... for a MIG instance, "
                         f"which CUDA_VISIBLE_DEVICES must show)")
    return f"cuda:{found[0]}"


def _nvml_uuids(entries: list[str] | None) -> list[str]:
    """UUIDs of the GPUs NVML counts (``entries`` None: all, in PCI order), or of the index entries of a
    CUDA_VISIBLE_DEVICES list ('' where unknown)."""
    if not nvml_available():
        return [] if entries is None else [""] * len(entries)
    import pynvml

    def uuid_of(index: int) -> str:
        try:
            u = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(index))
        except pynvml.NVMLError:
            return ""
        return u.decode() if isinstance(u, bytes) else str(u)
    if entries is None:
        try:
            return [uuid_of(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except pynvml.NVMLError:
            return []
    return [uuid_of(int(e)) if e.isdigit() else "" for e in entries]


def cuda_label(nvml_index: int, uuid: str, env: dict[str, str] | None = None) -> str | None:
    """The ``cuda:N`` under which torch in a process with ``env`` (default ours) sees the GPU that NVML counts as
    ``nvml_index`` with ``uuid``; None when CUDA_VISIBLE_DEVICES hides it. Assumes CUDA_DEVICE_ORDER=PCI_BUS_ID."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" not in env:
        return f"cuda:{nvml_index}"
    entries = [e.strip().lower() for e in env["CUDA_VISIBLE_DEVICES"].split(",") if e.strip()]
    for k, entry in enumerate(entries):
        if entry == str(nvml_index) or (entry.startswith(UUID_PREFIXES) and uuid.lower().startswith(entry)):
            return f"cuda:{k}"
        if not (entry.isdigit() or entry.startswith(UUID_PREFIXES)):
            break                   # CUDA stops at the first entry it cannot read
    return None


def cuda_visible_for(device: str, env: dict[str, str] | None = None) -> str:
    """The CUDA_VISIBLE_DEVICES value that shows a child process only ``device`` ('' for the CPU; 'cuda:0+cuda:1',
    a slot of several GPUs, shows them all): our own entry for it (an index or a GPU-/MIG- UUID) when ``env``
    (default ``os.environ``) restricts the GPUs we see, else its index."""
    env = os.environ if env is None else env
    if "+" in device:
        return ",".join(cuda_visible_for(d, env) for d in device.split("+") if d.startswith("cuda"))
    if not device.startswith("cuda"):
        return ""
    index = int(device.split(":")[1]) if ":" in device else 0
    parent = [p for p in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if p.strip()]
    return parent[index].strip() if "CUDA_VISIBLE_DEVICES" in env and index < len(parent) else str(index)


def fits(run_device: str, slot_device: str) -> bool:
    """May a run configured for ``run_device`` train in a slot on ``slot_device``? auto fits any slot; cpu only
    CPU slots; cuda any GPU slot; cuda:N only that GPU's slots (or a slot of several devices that has it)."""
    if run_device == "auto" or slot_device == "slurm":     # a Slurm job asks for what the run needs
        return True
    if "+" in slot_device:
        return run_device in slot_device.split("+") or (run_device == "cuda" and slot_device.startswith("cuda"))
    if run_device == "cuda":
        return slot_device.startswith("cuda")
    return run_device == slot_device


# -- NVML --------------------------------------------------------------------------------------------------------------
@dataclass
class GpuReading:
    index: int             # NVML's (PCI bus order)
    name: str
    util_pct: int | None
    mem_used: int          # bytes
    mem_total: int         # bytes
    temp_c: int | None
    uuid: str = ""
    cuda: str | None = None    # what torch calls it here (cuda_label); None: hidden by CUDA_VISIBLE_DEVICES


_nvml_lock = threading.Lock()
_nvml_state: dict = {"ok": None, "why": ""}


def nvml_available() -> bool:
    """Initialise NVML once; False (with :func:`nvml_unavailable_reason`) without the library or a driver."""
    with _nvml_lock:
        if _nvml_state["ok"] is None:
            try:
                import pynvml

                pynvml.nvmlInit()
                _nvml_state["ok"] = True
            except Exception as exc:  # noqa: BLE001 - ImportError, NVMLError_LibraryNotFound, DriverNotLoaded ...
                _nvml_state["ok"], _nvml_state["why"] = False, f"{type(exc).__name__}: {exc}"
        return bool(_nvml_state["ok"])


def nvml_unavailable_reason() -> str:
    return _nvml_state["why"]


def read_gpus() -> list[GpuReading] | None:
    """One reading per GPU of the machine (NVML order = PCI bus order), or None when NVML is not available.

    A value one GPU cannot report (utilisation on some virtualised GPUs) is None; it never raises."""
    if not nvml_available():
        return None
    import pynvml

    out = []
    try:
        count = pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError:
        return None
    for i in range(count):
        try:
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        except pynvml.NVMLError:
            continue
        uuid = _text(lambda h=h: pynvml.nvmlDeviceGetUUID(h))
        out.append(GpuReading(i, name.decode() if isinstance(name, bytes) else str(name),
                              _maybe(lambda h=h: pynvml.nvmlDeviceGetUtilizationRates(h).gpu),
                              int(mem.used), int(mem.total),
                              _maybe(lambda h=h: pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU)),
                              uuid, cuda_label(i, uuid)))
    return out


def exclusive_gpus(devices: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The GPUs among ``devices`` whose compute mode admits one process at a time (EXCLUSIVE_PROCESS, common on
    shared HPC servers): a second run there gets no CUDA context. Empty without NVML."""
    if not nvml_available():
        return []
    import pynvml

    one_at_a_time = {getattr(pynvml, "NVML_COMPUTEMODE_EXCLUSIVE_PROCESS", 3),
                     getattr(pynvml, "NVML_COMPUTEMODE_EXCLUSIVE_THREAD", 1)}
    out = []
    for device in sorted(set(devices)):
        if not device.startswith("cuda"):
            continue
        entry = cuda_visible_for(device, env)
        try:
            handle = (pynvml.nvmlDeviceGetHandleByIndex(int(entry)) if entry.isdigit()
                      else pynvml.nvmlDeviceGetHandleByUUID(entry))
            if pynvml.nvmlDeviceGetComputeMode(handle) in one_at_a_time:
                out.append(device)
        except pynvml.NVMLError:
            continue
    return out


def _text(read) -> str:
    import pynvml

    try:
        value = read()
    except pynvml.NVMLError:        # NVMLError_NotSupported and friends
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def has_gpu() -> bool:
    """An NVIDIA GPU is here (asked through NVML: fast, and torch need not be imported)."""
    return bool(read_gpus())


def _maybe(read):
    import pynvml

    try:
        return int(read())
    except (pynvml.NVMLError, TypeError, ValueError):     # NVMLError_NotSupported and friends
        return None


def runs_by_device(store) -> dict[str, list[str]]:
    """Running and paused runs per device ('cuda:2', 'cpu'): where a scheduler placed them, else what their
    status says ('cuda' alone is cuda:0)."""
    from core.serve.queue import placement
    from core.store.runs import ACTIVE, live_state

    out: dict[str, list[str]] = {}
    for run in store.runs():
        if live_state(run) not in ACTIVE:
            continue
        try:
            status = run.read_status()
        except (OSError, ValueError):
            continue
        where = placement(run, status)
        device = (where or {}).get("device") or status.get("device") or "?"
        for one in device.split("+"):            # a DDP run placed on several devices is on each
            out.setdefault("cuda:0" if one == "cuda" else one, []).append(run.id)
    return out
