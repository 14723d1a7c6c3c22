"""A run's state as the screens show it: with its progress bar or phase, and the next step to take (the plain-text
figures both clients share are core/util/formatting.py)."""
from __future__ import annotations

from rich.text import Text

from core.store.rules import ACTIVE
from core.util.formatting import state_style

# What to do next, shown beside a state.
STATE_HINTS = {
    "queued": "press r to start",
    "stopped": "checkpointed; r resumes",
    "crashed": "its process died; r resumes from the last checkpoint",
    "paused": "p continues",
}


def state_hint(app, info, queue_note: str = "the scheduler starts it") -> str | None:
    """What to do next with this run, or where it waits: a queued run in this app's queue or in the folder's queue
    (the scheduler starts it; 'press r to start' would train it in the app instead) is not told to press r."""
    position, in_queue = app.queue_position(info.id), app.scheduler_position(info.id)
    if position and info.state == "queued":
        return f"waiting in this app's queue: {position} run(s) before it"
    if in_queue and info.state == "queued":
        return f"in the queue at position {in_queue}: {queue_note}"
    return STATE_HINTS.get(info.state)


def phase_text(app, info) -> str:
    """'compiling', or 'compiling · stop requested: after the compile' once a stop waits for the compile to end (the
    trainer obeys between iterations: a pending stop must not look ignored), '... stopping: the compile is abandoned'
    where the trainer ends the compile (core/train/compile_watch.py). '' when the run is past its start."""
    if not info.phase:
        return ""
    event = app.queue.stop_events.get(info.id)
    pending = (event is not None and event.is_set()) or app.run_files(info.id).request == "stop"   # (followed)
    now = info.status.get("compile_stop") == "now"    # a trainer of its own process abandons the compile
    return info.phase + ((" · stopping: the compile is abandoned" if now else " · stop requested: after the compile")
                         if pending else "")


def state_text(state: str, progress: float | None = None, width: int = 5) -> Text:
    """'running ▰▰▱▱▱ 41%' for active runs, else the coloured state name."""
    text = Text(state, style=state_style(state))
    if progress is not None and state in ACTIVE:
        filled = int(round(progress * width))
        text.append(" " + "▰" * filled + "▱" * (width - filled), style="green" if state == "running" else "yellow")
        text.append(f" {progress * 100:.0f}%")
    return text
