"""The App's run dialogs that ask before acting on a run: each checks the run as its folder says now (not as the last
poll saw it) with core/store/rules.py before asking, so a dialog never offers what the run's state refuses."""
from __future__ import annotations

from core.store.rules import Refusal, delete_refusal
from core.store.runs import Run, RunError
from core.util.files import error_text

from .confirm import ConfirmScreen


def confirm_delete(app, run_id: str | None, after=None) -> None:
    """Ask, then delete the run's folder; refused at once (no question) for a run a live process owns."""
    if run_id is None:
        return
    info = app.live_info(run_id)       # the folder as it is now, not as the last poll saw it
    refused = delete_refusal(info, in_app=run_id in app.in_app)
    if refused is None and info is not None and info.state == "queued" and Run(info.path).is_locked():
        refused = Refusal("active", "is starting in another process; stop it before deleting")
    if info is None or refused is not None:
        app.notify(f"{run_id} {refused.text if refused else 'is gone'}", severity="warning")
        app.poll_runs()
        return

    def done(answer: str | None) -> None:
        if answer != "delete":
            return
        try:
            app.store.delete(run_id)
        except (RunError, OSError) as exc:
            app.notify(f"cannot delete {run_id}: {error_text(exc, app.store.root, 'delete it again')}",
                       severity="error")
            return
        app.marked.discard(run_id)
        app.notify(f"deleted {run_id}", timeout=3)
        app.poll_runs()
        if after is not None:
            after()

    app.push_screen(ConfirmScreen(f"Delete {run_id}?", f"This removes the folder {app.store.root / run_id} "
                                   "with its checkpoint and logs. It cannot be undone.",
                                   [("delete", "Delete", "error"), ("cancel", "Keep", "primary")],
                                   id="confirm-delete", focus="cancel"), done)

