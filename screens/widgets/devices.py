"""The devices panel: per GPU its utilisation, memory used/total, temperature and the runs on it; "CPU only"
where there is no NVIDIA GPU. Readings come from core.serve.gpus (NVML), once a second, in a thread of its own:
NVML calls and the scan of the run folders never run on the interface's thread."""
from __future__ import annotations

import threading

from rich.text import Text
from textual import work
from textual.widgets import Static
from textual.worker import get_current_worker

from core.serve.gpus import GpuReading, nvml_unavailable_reason, read_gpus, runs_by_device
from core.store.runs import RunStore

from .worker_errors import TellWorkerErrors

READ_EVERY_S = 1.0


def render_devices(readings: list[GpuReading] | None, runs: dict[str, list[str]], why: str = "") -> Text:
    """The panel's text for one reading (None: no NVML, so CPU only)."""
    text = Text()
    if readings is None or not readings:
        text.append("CPU only", style="bold")
        text.append(f"  no NVIDIA GPU here{f' ({why})' if why else ''}", style="dim")
        on_cpu = runs.get("cpu", [])
        text.append(f"\ncpu  runs: {', '.join(on_cpu) if on_cpu else 'none'}")
        return text
    for i, g in enumerate(readings):
        label = g.cuda or f"gpu {g.index}"       # a GPU hidden from us by CUDA_VISIBLE_DEVICES: NVML's number
        on = runs.get(g.cuda, []) if g.cuda else []
        util = "-" if g.util_pct is None else f"{g.util_pct:3d}%"
        temp = "-" if g.temp_c is None else f"{g.temp_c}°C"
        if i:
            text.append("\n")
        text.append(f"{label} ", style="bold")
        text.append(f"{g.name[:24]:<24} util {util:>4}  mem {g.mem_used / 2**30:5.1f}/{g.mem_total / 2**30:.0f} GiB "
                    f" {temp:>5}  ")
        text.append(f"runs: {', '.join(on)}" if on else "idle", style="" if on else "dim")
    return text


class DevicesPanel(TellWorkerErrors, Static):
    """Re-reads the devices and the runs on them every READ_EVERY_S seconds while it is on screen."""

    def __init__(self, store: RunStore, **kwargs):
        super().__init__(Text("reading devices...", style="dim"), **kwargs)
        self.store = store
        self._wake = threading.Event()
        self.readings: list[GpuReading] | None = None

    def on_mount(self) -> None:
        self._read_loop()

    def on_unmount(self) -> None:
        self._wake.set()

    @work(thread=True, exclusive=True, exit_on_error=False, group="devices")
    def _read_loop(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled and not self._wake.is_set():
            readings, runs = read_gpus(), runs_by_device(self.store)
            try:
                self.app.call_from_thread(self.show, readings, runs)
            except RuntimeError:        # the app is closing
                return
            self._wake.wait(READ_EVERY_S)

    def show(self, readings: list[GpuReading] | None, runs: dict[str, list[str]]) -> None:
        self.readings = readings
        self.update(render_devices(readings, runs, nvml_unavailable_reason()))
