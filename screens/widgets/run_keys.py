"""Which run keys apply to a run in its present state: the monitor and the detail screen show only those in their
footer (``check_action``), so a finished run's footer offers no Resume, a stopped one no Stop or Pause, and a paused
one Continue where a running one has Pause (both on p)."""
from __future__ import annotations

from core.store.runs import ACTIVE, RESUMABLE

STATE_KEYS = ("stop", "pause", "continue", "resume")


def run_key_applies(app, run_id: str, action: str) -> bool:
    """False for a run key (stop, pause, resume) that would only say 'cannot' for this run now; True otherwise."""
    if action not in STATE_KEYS:
        return True
    info = app.watcher.infos.get(run_id)
    state = info.state if info is not None else "gone"
    here = app.is_in_app(run_id)
    if action == "stop":
        return state in ACTIVE or here
    if action == "pause":
        return state == "running"
    if action == "continue":
        return state == "paused"
    return state in RESUMABLE and not here
