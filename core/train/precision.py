"""``precision: auto`` on the CPU: bf16 autocast where this CPU computes in bf16 and a short probe finds it faster.

Many CPUs compute bf16 in hardware (Intel AMX, AVX512-BF16; Arm's BF16), and oneDNN uses it under
``torch.autocast("cpu", dtype=torch.bfloat16)``; elsewhere bf16 is emulated and slower than fp32. So on the CPU
``auto`` is bf16 only when the hardware has it AND a probe like channels_last's (core/train/memory_format.py: small
batches, about two seconds, the answer cached per machine, torch version and model shape) measures bf16 at least
BF16_MARGIN faster than fp32; fp32 otherwise. On GPUs ``auto`` stays core/train/device.py ``resolve_precision``
(bf16 from compute capability 8.0). Either way the weights, batch norm's running statistics, the loss (on fp32
logits) and the optimizer state stay fp32: autocast computes the convolutions and the linear layer in bf16
(core/train/step.py).
"""
from __future__ import annotations

import copy
import os
import platform
import time
from pathlib import Path

import torch

from core.spec.config import RunConfig
from core.store.settings import cache_dir, read_json, write_json
from core.train.device import precision_note, resolve_precision
from core.train.memory_format import CPU_PROBE_BATCH, PROBE_BUDGET_S, probe_key, time_variants
from core.train.step import TrainStep

CACHE_FILE = "precision.json"
BF16_MARGIN = 0.9          # bf16 must take at most 90% of fp32's step time to be chosen (it costs some accuracy)
CPU_BF16_ENV = "RESLAB_CPU_BF16"     # "off": precision auto never probes bf16 on the CPU (the test suite sets it)
# /proc/cpuinfo flags of CPUs that compute bf16: x86 AMX tiles and AVX512-BF16; Arm's BF16 extension
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")


def cpu_bf16_hardware(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[bool, str]:
    """Does this CPU compute bf16 in hardware? (answer, why). oneDNN must support bf16 here
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``, true on any AVX512 CPU) AND the CPU must have one of BF16_FLAGS
    (read from /proc/cpuinfo; none found elsewhere, e.g. macOS: then fp32)."""
    try:
        mkldnn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        mkldnn = False
    flags = cpu_flags(cpuinfo)
    found = [f for f in BF16_FLAGS if f in flags]
    if mkldnn and found:
        return True, f"this CPU computes in bf16 ({', '.join(found)})"
    if not found:
        return False, "this CPU does not compute in bf16 (no amx_bf16, avx512_bf16 or Arm bf16)"
    return False, f"torch's oneDNN does not support bf16 on this CPU (although it has {', '.join(found)})"


def cpu_flags(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> set[str]:
    """The feature flags of the first CPU in ``cpuinfo`` (x86 ``flags``, Arm ``Features``); empty when unreadable."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def choose_precision(cfg: RunConfig, model: torch.nn.Module, device: torch.device,
                     measure: bool = True) -> tuple[str, str]:
    """The run's precision and a line for events.log saying why ("" when there is nothing to say).

    ``measure``: whether ``auto`` may probe (training, the main process); without it the CPU gets fp32."""
    precision = resolve_precision(cfg.precision, device)
    if cfg.precision != "auto" or device.type != "cpu":
        note = precision_note(precision, device)
        if note is None and precision == "bf16" and device.type == "cpu":
            note = cpu_bf16_note(cpu_bf16_hardware())
        return precision, note or ""
    hardware, why = cpu_bf16_hardware()
    if not hardware:
        return "fp32", f"precision: fp32 (auto: {why}; bf16 would be emulated and slower)"
    if not measure:
        return "fp32", ""
    if cfg.deterministic or os.environ.get(CPU_BF16_ENV, "").lower() in ("off", "0", "no"):
        reason = "--deterministic" if cfg.deterministic else f"${CPU_BF16_ENV}=off"
        return "fp32", f"precision: fp32 (auto: {why}, but not measured under {reason}; --precision bf16 to use it)"
    return cached_or_measured(cfg, model, device, why)


def cpu_bf16_note(hardware: tuple[bool, str]) -> str | None:
    """The warning for bf16 asked for on a CPU without bf16 hardware, else None."""
    has, why = hardware
    if has:
        return None
    return f"warning: bf16 on this CPU is emulated and slower than fp32: {why}; --precision auto picks fp32 here"


def cached_or_measured(cfg: RunConfig, model: torch.nn.Module, device: torch.device, why: str) -> tuple[str, str]:
    """The probe's answer for this machine and model, from the cache or measured now (and cached)."""
    key = probe_key(cfg, device, "fp32 vs bf16")
    path = cache_dir() / CACHE_FILE
    cached = read_json(path).get(key)
    if isinstance(cached, dict) and cached.get("precision") in ("fp32", "bf16"):
        return cached["precision"], (f"precision: {cached['precision']} (auto: {why}; measured on this machine "
                                     f"before: {cached.get('detail', '?')}; cached in {path})")
    choice, detail = measure_bf16(model, device, cfg.batch_size)
    table = read_json(path)
    table[key] = {"precision": choice, "detail": detail, "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    write_json(path, table)
    return choice, f"precision: {choice} (auto: {why}; {detail})"


def measure_bf16(model: torch.nn.Module, device: torch.device, batch_size: int,
                 budget_s: float = PROBE_BUDGET_S) -> tuple[str, str]:
    """Time training steps of copies of ``model`` in fp32 and bf16 (small batches, about ``budget_s``); "bf16" when
    its fastest step takes at most BF16_MARGIN of fp32's. The inputs come from a private generator, so the run's
    random streams are untouched."""
    batch = min(batch_size, CPU_PROBE_BATCH)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    probes = {}
    for precision in ("fp32", "bf16"):
        probe = copy.deepcopy(model).train()
        probes[precision] = (TrainStep(probe, torch.optim.SGD(probe.parameters(), lr=0.0), device, precision), x)
    best, steps = time_variants(probes, y, device, budget_s)
    del probes
    choice = "bf16" if best["bf16"] <= best["fp32"] * BF16_MARGIN else "fp32"
    return choice, (f"measured fp32 {best['fp32'] * 1e3:.1f} ms, bf16 {best['bf16'] * 1e3:.1f} ms per step of "
                    f"{batch} images on {platform.machine()}, {steps} step(s) each")
