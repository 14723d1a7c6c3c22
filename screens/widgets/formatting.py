"""What only the screens add to core.formatting: a state with its progress bar, and the next step for a state."""
from __future__ import annotations

from rich.text import Text

from core.formatting import state_style

# What to do next, shown beside a state.
STATE_HINTS = {
    "queued": "press r to start",
    "stopped": "checkpointed; r resumes",
    "crashed": "its process died; r resumes from the last checkpoint",
    "paused": "p continues",
}


def state_text(state: str, progress: float | None = None, width: int = 5) -> Text:
    """'running ▰▰▱▱▱ 41%' for active runs, else the coloured state name."""
    text = Text(state, style=state_style(state))
    if progress is not None and state in ("running", "paused"):
        filled = int(round(progress * width))
        text.append(" " + "▰" * filled + "▱" * (width - filled), style="green" if state == "running" else "yellow")
        text.append(f" {progress * 100:.0f}%")
    return text
