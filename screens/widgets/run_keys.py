"""Which run keys apply to a run in its present state: the monitor and the detail screen show only those in their
footer (``check_action``), so a finished run's footer offers no Resume, a stopped one no Stop or Pause, and a paused
one Continue where a running one has Pause (both on p), a queued one no Resume, a running or gone one no Delete."""
from __future__ import annotations

from core.store.rules import continue_refusal, delete_refusal, offer_resume_refusal, pause_refusal, stop_refusal

STATE_KEYS = ("stop", "pause", "continue", "resume", "delete")


def run_key_applies(app, run_id: str, action: str) -> bool:
    """False for a run key (stop, pause, resume, delete) that would only say 'cannot' for this run now; True
    otherwise."""
    if action not in STATE_KEYS:
        return True
    info = app.watcher.infos.get(run_id)
    here = app.is_in_app(run_id)
    if info is None:
        return action == "stop" and here
    if action == "stop":
        return stop_refusal(info, queued_here=here) is None
    if action == "pause":
        return pause_refusal(info.state) is None
    if action == "continue":
        return continue_refusal(info.state) is None
    if action == "delete":
        return delete_refusal(info, in_app=here) is None
    return offer_resume_refusal(info) is None and not here
