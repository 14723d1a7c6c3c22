"""Small formatters shared by the screens: errors in percent, durations, states with their colours."""
from __future__ import annotations

from rich.text import Text

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

# What to do next, shown beside a state.
STATE_HINTS = {
    "queued": "press r to start",
    "stopped": "checkpointed; r resumes",
    "crashed": "its process died; r resumes from the last checkpoint",
    "paused": "p continues",
}


def fmt_err(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def fmt_bytes(n: float | None) -> str:
    if not n:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "-"  # pragma: no cover


def fmt_count(n: float | None) -> str:
    """1234 -> 1.2k, 64000 -> 64k."""
    if n is None:
        return "-"
    if abs(n) >= 1e6:
        return f"{n / 1e6:.3g}M"
    if abs(n) >= 1e3:
        return f"{n / 1e3:.3g}k"
    return f"{n:.3g}"


def state_text(state: str, progress: float | None = None, width: int = 5) -> Text:
    """'running ▰▰▱▱▱ 41%' for active runs, else the coloured state name."""
    text = Text(state, style=STATE_STYLES.get(state, ""))
    if progress is not None and state in ("running", "paused"):
        filled = int(round(progress * width))
        text.append(" " + "▰" * filled + "▱" * (width - filled), style="green" if state == "running" else "yellow")
        text.append(f" {progress * 100:3.0f}%")
    return text


def model_name(depth: int | None, shortcut: str | None) -> str:
    if depth is None:
        return "-"
    return f"plain-{depth}" if shortcut == "none" else f"ResNet-{depth}"


_BLOCKS = " ▁▂▃▄▅▆▇█"


def spark_text(values: list[float], width: int, rows: int = 2) -> str:
    """A sparkline of the last ``width`` values, ``rows`` characters tall (8 levels per row), min..max scaled."""
    values = [v for v in values if v is not None][-max(1, width):]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    levels = [1 + round((v - lo) / span * (rows * 8 - 1)) for v in values]
    lines = []
    for row in range(rows - 1, -1, -1):
        lines.append("".join(_BLOCKS[min(8, max(0, lv - row * 8))] for lv in levels))
    return "\n".join(lines)
