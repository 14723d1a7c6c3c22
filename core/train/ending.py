"""How a training run ends: ``Stop`` (raised inside the loop to end it with a state and a one-line why), the state a
failure ends it with (``outcome_of``) and what its end records (``end_record``). The trainer (core/train/trainer.py)
writes them; a stop during the compile (core/train/compile_watch.py) ends the same way.
"""
from __future__ import annotations

from typing import Any

from core.store.runs import LockLostError, now
from core.train.distributed import Dist, end_of
from core.util.files import write_error
from core.util.formatting import first_line


class Stop(Exception):
    """Raised inside the loop to end training with a state."""

    def __init__(self, state: str, message: str = ""):
        super().__init__(message)
        self.state, self.message = state, message


def outcome_of(exc: Exception, run_path: Any, dist: Dist) -> tuple[str, str]:
    """The state and message ``exc`` ends the run with: a ``Stop``'s own; crashed when the lock was lost (`rm runs/X/
    lock` let another process take the run: nothing more is written); failed with the way out for a disk's error;
    else out-of-memory, crashed or failed as core/train/distributed.py ``end_of`` says (a follower's failure is told
    to rank 0, which records it rather than "another process died")."""
    if isinstance(exc, Stop):
        return exc.state, exc.message
    if isinstance(exc, LockLostError):
        return "crashed", str(exc)
    if isinstance(exc, OSError):
        return "failed", write_error(exc, run_path, then="resume")
    state, message = end_of(exc, dist)
    if state == "failed" and not dist.is_main:
        dist.tell(f"failed: {message}")
    return state, message


def end_record(state: str, message: str) -> tuple[str, dict[str, Any], str]:
    """What an end records: status.json's one-line message and fields, and events.log's line, all of the message
    (a torch error can run to 40 lines): "stopped at epoch 2, step 59; resumable", "failed: ..." (never
    "stopped: stopped")."""
    short = first_line(message)
    fields: dict[str, Any] = {"error": short if state not in ("finished", "stopped") else None,
                              **({"finished_at": now()} if state == "finished" else {})}
    line = message if message.startswith(state) else state + (f": {message}" if message else "")
    return short, fields, line
