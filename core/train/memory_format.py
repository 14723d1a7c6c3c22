"""channels_last "auto": time a few training steps in both memory formats and keep the faster one, once per
machine, device and model shape (the answer is cached in the user's cache folder, core/store/settings.py).

Measured, not assumed: channels_last is often faster for convolutions on GPUs but can lose at 16 channels or on
some CPUs. On a GPU the probe runs the run's batch size (a fraction of a second); on the CPU it runs small batches
within a budget of about two seconds, instead of the 10-40 s that full batches of a deep net took there.
"""
from __future__ import annotations

import copy
import platform
import socket
import time

import torch

from core.spec.archs import doubling
from core.spec.config import RunConfig
from core.store.settings import cache_dir, read_json, write_json
from core.train.device import gpu_sharing, is_out_of_memory, release_memory, sync_device
from core.train.step import TrainStep

CACHE_FILE = "channels_last.json"
PROBE_BUDGET_S = 2.0      # the CPU probe's time, all steps of both formats together (about)
CPU_PROBE_BATCH = 16      # images per probe step on the CPU
MAX_ROUNDS = 3            # timed steps per format at most


def choose_channels_last(cfg: RunConfig, model: torch.nn.Module, device: torch.device,
                         precision: str) -> tuple[bool, str]:
    """The config's memory format: on, off, or (auto) measured here or read from the cache; with a log note."""
    if cfg.channels_last != "auto":
        return cfg.channels_last == "on", ""
    if cfg.deterministic:
        return False, ""
    hazard = cpu_hazard(model, device)
    if hazard:
        return False, f"memory format: channels_last off (not measured: {hazard})"
    shared = gpu_sharing() if device.type == "cuda" else 1
    if shared > 1:    # the others' work would time into ours, and the probe's memory is theirs too: no measure
        return False, (f"memory format: channels_last off (not measured: this GPU trains {shared} runs at once; "
                       f"--channels-last on to use it)")
    key = probe_key(cfg, device, precision)
    path = cache_dir() / CACHE_FILE
    cached = read_json(path).get(key)
    if isinstance(cached, dict) and isinstance(cached.get("channels_last"), bool):
        choice = cached["channels_last"]
        return choice, (f"memory format: channels_last {'on' if choice else 'off'} (measured on this machine "
                        f"before: {cached.get('detail', '?')}; cached in {path})")
    try:
        choice, detail = measure_channels_last(model, device, precision, cfg.batch_size)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        choice = None
    if choice is None:        # after the except block, which held the probe's tensors
        release_memory(device)
        return False, "memory format: channels_last off (not measured: the probe ran out of memory)"
    table = read_json(path)
    table[key] = {"channels_last": choice, "detail": detail, "measured_at": time.strftime("%Y-%m-%d %H:%M")}
    write_json(path, table)
    return choice, f"memory format: channels_last {'on' if choice else 'off'} ({detail})"


def cpu_hazard(model: torch.nn.Module, device: torch.device) -> str:
    """Why channels_last must not train ``model`` on this CPU ("" when it may).

    PyTorch's CPU convolutions (oneDNN's AVX2 kernels, torch 2.14 measured) hang with two threads and crash with one in
    the backward pass of a 1x1 stride-2 convolution with fewer than 8 input channels in channels_last: a ResNet's
    projection shortcut (B) at a first stage narrower than 8 filters. Such a model trains contiguous on the CPU."""
    if device.type != "cpu":
        return ""
    for m in model.modules():
        if (isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1)
                and m.in_channels < 8):
            return (f"PyTorch's CPU convolutions hang in channels_last on a 1x1 stride-{m.stride[0]} convolution "
                    f"of {m.in_channels} channels, this model's projection shortcut")
    return ""


def probe_key(cfg: RunConfig, device: torch.device, precision: str) -> str:
    """What the answer depends on: the machine, the device (and CPU threads), torch, precision, the model's shape and
    the batch size."""
    if device.type == "cuda":
        dev = torch.cuda.get_device_name(device)
    else:
        dev = f"{device.type} {platform.processor() or platform.machine()} x{torch.get_num_threads()}"
    return (f"{socket.gethostname()} | {dev} | torch {torch.__version__} | {precision} | {cfg.dataset} "
            f"{'' if cfg.arch == 'resnet' else cfg.arch + ' '}depth {cfg.depth} {cfg.shortcut} width {cfg.width} "
            f"{shape_extra(cfg)}"
            f"| batch {cfg.batch_size}")


def shape_extra(cfg: RunConfig) -> str:
    """The stage and stem widths where they are not width's doubling (issue 28's nets): another shape, another key."""
    extra = "" if tuple(cfg.widths) == doubling(cfg.width) else f"widths {','.join(map(str, cfg.widths))} "
    return extra + (f"stem {cfg.stem_width} " if cfg.stem_width else "")


def measure_channels_last(model: torch.nn.Module, device: torch.device, precision: str, batch_size: int,
                          budget_s: float = PROBE_BUDGET_S) -> tuple[bool, str]:
    """Time training steps of copies of ``model`` in both memory formats; True when channels_last wins by 3%.

    One step per format first, then more that alternate between the formats (so other load slows both alike), up
    to MAX_ROUNDS or until the budget would be overrun; the fastest step of each format counts.
    The inputs come from a private generator, so the run's random streams are untouched.
    """
    batch = batch_size if device.type == "cuda" else min(batch_size, CPU_PROBE_BATCH)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)
    probes = {}
    for fmt in (False, True):
        probe = copy.deepcopy(model).train()
        if fmt:
            probe = probe.to(memory_format=torch.channels_last)
        st = TrainStep(probe, torch.optim.SGD(probe.parameters(), lr=0.0), device, precision)
        probes[fmt] = (st, x.contiguous(memory_format=torch.channels_last) if fmt else x)
    best, steps = time_variants(probes, y, device, budget_s)
    del probes
    choice = best[True] < best[False] * 0.97
    return choice, (f"measured contiguous {best[False] * 1e3:.1f} ms, channels_last {best[True] * 1e3:.1f} ms per "
                    f"step of {batch} images, {steps} step(s) each")


def time_variants(probes: dict, y: torch.Tensor, device: torch.device,
                  budget_s: float = PROBE_BUDGET_S) -> tuple[dict, int]:
    """The fastest step of each variant (``{key: (TrainStep, input batch)}``) in seconds, and the timed steps each.

    One step per variant first, then more that alternate between the variants (so other load slows all alike), up
    to MAX_ROUNDS or until the budget would be overrun. Also the precision probe's (core/train/precision.py)."""
    # the first step of each variant: cudnn.benchmark picks its algorithms there (GPU); on the CPU it is already
    # a fair measurement, and on a slow or busy CPU the only one the budget allows
    gpu = device.type == "cuda"
    start = time.perf_counter()
    best = {}
    for key, (st, xx) in probes.items():
        t0 = time.perf_counter()
        st(xx, y, 0.0)
        sync_device(device)
        best[key] = float("inf") if gpu else time.perf_counter() - t0
    rounds = 0
    while rounds < MAX_ROUNDS:
        spent = time.perf_counter() - start
        if spent + spent / (rounds + 1) > budget_s and not (gpu and rounds == 0):
            break                                      # the next round would overrun the budget
        for key, (st, xx) in probes.items():
            t0 = time.perf_counter()
            st(xx, y, 0.0)
            sync_device(device)
            best[key] = min(best[key], time.perf_counter() - t0)
        rounds += 1
    return best, rounds + (0 if gpu else 1)
