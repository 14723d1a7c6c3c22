"""A background worker's error is told, not lost: the thread workers run with ``exit_on_error=False`` (a failed
report or read must not end the app), and Textual then only sets the worker's state. ``Worker.StateChanged`` does
not bubble, so each node that starts workers (the App, screens, widgets) takes this mixin: the error goes to the
log (``reslab.tui``, and Textual's devtools log) and to a notification naming the work that failed."""
from __future__ import annotations

import logging

from textual.worker import Worker, WorkerState

log = logging.getLogger("reslab.tui")


def worker_error_text(worker: Worker) -> str:
    what = worker.description or worker.name or worker.group or "background work"
    return f"{what} failed: {type(worker.error).__name__}: {worker.error}"


class TellWorkerErrors:
    """Mixin for a Textual node (App, Screen or Widget) that starts workers."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        text = worker_error_text(event.worker)
        log.error(text, exc_info=event.worker.error)
        app = getattr(self, "app", self)
        app.log.error(text)
        app.notify(text, title="Background work failed", severity="error", timeout=10)
