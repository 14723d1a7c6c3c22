"""How ResLab writes its figures and states as text: one module for the CLI (rich) and the TUI (Textual).

Plain strings only (no UI import), so core/, cli/ and screens/ can all use it. Unknown values (None, NaN, inf)
print as "-". Style strings are words that both rich and Textual markup understand ("bold green", "dim").
"""
from __future__ import annotations

import math
import os
from typing import Any

# One colour per state (the runs table, the CLI `runs` list, titles, error lines).
STATE_STYLES = {
    "queued": "dim",
    "running": "bold green",
    "paused": "yellow",
    "stopped": "cyan",
    "finished": "bold",
    "failed": "bold red",
    "diverged": "bold red",
    "out-of-memory": "bold red",
    "crashed": "red",
    "damaged": "reverse red",
}


def state_style(state: str, default: str = "") -> str:
    return STATE_STYLES.get(state, default)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def pct(value: Any, unit: bool = True) -> str:
    """An error in percent: 8.75 -> '8.75%' ('8.75' with unit=False, for columns titled in %)."""
    return "-" if not is_number(value) else f"{float(value):.2f}" + ("%" if unit else "")


def num(value: Any, digits: int = 4) -> str:
    """A loss, a learning rate, seconds: ``digits`` significant digits (2.302585 -> '2.303')."""
    return "-" if not is_number(value) else f"{float(value):.{digits}g}"


def decimals(value: Any, places: int) -> str:
    """A column's losses or seconds: a fixed number of decimals, so they line up (2.06 -> '2.0600' at 4)."""
    return "-" if not is_number(value) else f"{float(value):.{places}f}"


def rate(value: Any) -> str:
    """Images per second: 12345.6 -> '12,346'."""
    return "-" if not is_number(value) else f"{float(value):,.0f}"


def count(value: Any) -> str:
    """Iterations: 1234 -> '1.23k', 64000 -> '64k'."""
    if not is_number(value):
        return "-"
    n = float(value)
    if abs(n) >= 1e6:
        return f"{n / 1e6:.3g}M"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.3g}k"
    return f"{n:.3g}"


def duration(seconds: Any) -> str:
    """4.24 -> '4.2s', 42 -> '42s', 65 -> '1m05s', 3725 -> '1h02m', 5 days -> '5d00h', 1e10 -> '317 years'."""
    if not is_number(seconds):
        return "-"
    if seconds < 9.95:
        return f"{max(0.0, float(seconds)):.1f}s"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 100 * 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s < 365 * 86400:
        return f"{s // 86400}d{(s % 86400) // 3600:02d}h"
    years = seconds / (365.25 * 86400)
    return f"{years:,.0f} years" if years < 1e6 else f"{years:.2g} years"


def mem(nbytes: Any) -> str:
    """Bytes in binary units: 1536 -> '1.5 KiB', 3 * 2**30 -> '3.0 GiB'; '-' for unknown or 0."""
    if not is_number(nbytes) or not nbytes:
        return "-"
    n = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def number_text(value: Any) -> str:
    """A number for a message: as written, except that a huge one is shortened ('1e+300', not 301 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 15:
        digits = len(str(abs(value)))
        return f"{float(value):.3g}" if digits <= 308 else f"a {digits}-digit number"
    if isinstance(value, float) and abs(value) >= 1e15:
        return f"{value:.3g}"
    return str(value)


def some_ids(run_ids: list[str], shown: int = 4) -> str:
    """The first ``shown`` ids, and how many more there are ('a, b, c, d and 3 more')."""
    return ", ".join(run_ids[:shown]) + (f" and {len(run_ids) - shown} more" if len(run_ids) > shown else "")


def one_line(text: Any, limit: int = 80) -> str:
    """An error message on one line of at most ``limit`` characters (for tables)."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(text: Any, limit: int = 1000) -> str:
    """The first non-empty line of a message (a torch error can run to 40 lines), with a pointer to the rest:
    what status.json, the CLI and the TUI show; the whole text goes to events.log."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0] if len(lines[0]) <= limit else lines[0][: limit - 1] + "…"
    return line + (" (more in events.log)" if len(lines) > 1 else "")


def epochs_text(done: int | None, total: int | None) -> str:
    """'3/10'; '3/?' while the total is unknown; '-' for a run without readable settings."""
    return "-" if done is None else f"{done}/{total or '?'}"


def epoch_count(n: int) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def model_name(depth: int | None, shortcut: str | None, arch: str = "resnet", width: int = 16) -> str:
    """'ResNet-20', 'plain-20' for a net without shortcuts, 'PreAct-164' (pre-activation, either block) or
    'WRN-28-10' (a wide ResNet of width 160 = 16 x 10; 'WRN-28 w100' when the width is not a multiple of 16)."""
    if depth is None:
        return "-"
    if arch in ("preact", "preact-bottleneck"):
        return f"PreAct-{depth}" + (" plain" if shortcut == "none" else "")
    if arch == "wrn":
        name = f"WRN-{depth}-{width // 16}" if width % 16 == 0 else f"WRN-{depth} w{width}"
        return name + (" plain" if shortcut == "none" else "")
    return f"plain-{depth}" if shortcut == "none" else f"ResNet-{depth}"


def depth_text(row: dict) -> str:
    """A runs table's depth cell from a summary row: '20' for the paper's ResNet, the net's name for the others
    ('PreAct-164', 'WRN-28-10'), whose depth alone does not say what was trained; '-' without settings."""
    if row.get("depth") is None:
        return "-"
    return str(row["depth"]) if row.get("arch") in (None, "resnet") else str(row.get("model") or row["depth"])


def world_text(world_size: Any) -> str:
    """' x4' for a run trained by 4 processes (DDP); '' for one process."""
    return f" x{int(world_size)}" if is_number(world_size) and int(world_size) > 1 else ""


def devices_text(status: dict) -> str:
    """What trains a run, from its status.json: 'cuda:0', or '4 × cuda on gpu01' for a DDP run."""
    devices = status.get("devices") or []
    if len(devices) <= 1:
        return str(status.get("device") or "-")
    parts = [str(d).partition(":") for d in devices]              # "host:cuda:1" -> host, cuda:1
    hosts = list(dict.fromkeys(host for host, _, _ in parts))
    kinds = list(dict.fromkeys(dev.split(":")[0] for _, _, dev in parts))
    return f"{len(devices)} × {'/'.join(kinds)} on {', '.join(hosts)}"


def slurm_text(job: dict | None) -> str:
    """'slurm 4242 PENDING' for a run sent to Slurm (its slurm.json); '' for any other run."""
    if not job or not job.get("job_id"):
        return ""
    cluster = job.get("cluster") or "slurm"
    return f"{'slurm' if cluster == 'slurm' else f'{cluster} job'} {job['job_id']} {job.get('state') or '?'}"


def short_id(run_id: str, width: int = 20) -> str:
    """'r20-A-sgd-20261127-214501' -> 'r20-A-sgd…27-214501': the table keeps its paper% column in 80 columns."""
    if len(run_id) <= width:
        return run_id
    head = (width - 1) // 2
    return run_id[:head] + "…" + run_id[-(width - 1 - head):]


def short_ids(run_ids: list[str], width: int = 20) -> dict[str, str]:
    """Each id as ``short_id`` shortens it, except ids that would look alike: the runs of a grid share their head
    and their time stamp ('r8-A-w4-sgd-s1-20261129-010455', '...-s2-...' both become 'r8-A-w4-s…129-010455'), so
    those keep the part where they differ ('r8-A-w4-sgd-s1…10455'); a few rounds, as what tells two ids apart
    can make them look like a third."""
    shown = {run_id: short_id(run_id, width) for run_id in run_ids}
    for _ in range(4):
        alike: dict[str, list[str]] = {}
        for run_id, text in shown.items():
            alike.setdefault(text, []).append(run_id)
        groups = [group for group in alike.values() if len(group) > 1]
        if not groups:
            break
        for group in groups:
            head = len(os.path.commonprefix(group))
            tail = len(os.path.commonprefix([g[::-1] for g in group]))
            for run_id in group:
                end = max(head + 1, len(run_id) - tail)        # the part where they differ: [head, end)
                if end <= width - 1 and end < len(run_id):
                    rest = width - 1 - end
                    shown[run_id] = run_id[:end] + "…" + (run_id[-rest:] if rest else "")
                elif len(run_id) - head <= width - 1:
                    shown[run_id] = "…" + run_id[-(width - 1):]
                else:
                    shown[run_id] = "…" + run_id[end - (width - 2):end] + "…"
    return shown
