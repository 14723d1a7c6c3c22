"""The scheduler's device slots (core/serve/scheduler.py): what a slot is, the slots a set of devices makes, the CPU
threads and the sharing each slot's trainer process gets, and whether a slot can train a run (``misfit``)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.serve.gpus import fits
from core.store.runs import Run


@dataclass(frozen=True)
class Slot:
    """One place a run can train: a device and a number among that device's slots. A slot of several devices
    ('cuda:0+cuda:1', from --gpus-per-run 2) trains each run with torchrun over them (core/serve/launch.py)."""

    device: str
    number: int

    @property
    def name(self) -> str:
        return f"{self.device}#{self.number}"


@dataclass
class Busy:
    """A slot's run and its trainer process."""

    run: Run
    handle: object | None          # the launcher's handle; None for a run a previous scheduler started
    since: float = field(default_factory=time.monotonic)


def make_slots(devices: list[str], per_device: int = 1, gpus_per_run: int = 1) -> list[Slot]:
    """'cuda:0,cuda:2' x 2 -> cuda:0#0, cuda:0#1, cuda:2#0, cuda:2#1; a device listed twice counts twice.
    ``gpus_per_run`` N: consecutive groups of N devices make one slot each (cuda:0+cuda:1#0, ...); devices left
    over are not used."""
    if gpus_per_run > 1:
        devices = ["+".join(devices[i:i + gpus_per_run]) for i in range(0, len(devices) - gpus_per_run + 1,
                                                                        gpus_per_run)]
    counts: dict[str, int] = {}
    slots = []
    for device in devices:
        for _ in range(per_device):
            slots.append(Slot(device, counts.get(device, 0)))
            counts[device] = counts.get(device, 0) + 1
    return slots


def misfit(cfg, slot: Slot) -> str:
    """Why ``slot`` cannot train a run of ``cfg`` ('' when it can): another device, or a batch that does not
    divide among the slot's torchrun processes (which would refuse it)."""
    if not fits(cfg.device, slot.device):
        return f"asks for device {cfg.device}, which none of this scheduler's slots has"
    if "+" not in slot.device:
        return ""
    from core.train.distributed import check_launch  # imports torch: only for slots of several devices

    return "; ".join(check_launch(cfg, slot.device.count("+") + 1, None).values())


def slot_threads(slots: list[Slot], cpus: int) -> tuple[int, int]:
    """CPU threads for a trainer process of a CPU slot and of a GPU slot: CPU slots share the cores but one (left
    to this scheduler, the app, ssh), as in-app training does; GPU slots (whose processes feed the GPU and need few)
    share the same cores, so that N processes never start N x all-cores threads."""
    cpu_slots = sum(s.device.startswith("cpu") for s in slots)
    gpu_slots = len(slots) - cpu_slots
    spare = max(1, cpus - 1)
    return max(1, spare // max(1, cpu_slots)), max(1, spare // max(1, gpu_slots))


def sharing(slots: list[Slot]) -> dict[str, int]:
    """device -> how many slots train on it at once (--per-device N)."""
    out: dict[str, int] = {}
    for slot in slots:
        out[slot.device] = out.get(slot.device, 0) + 1
    return out
