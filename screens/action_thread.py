"""The file work of what a user asks (stop, pause, resume, launch, extend, delete, a note, a queue move) done off the
event loop, in one thread of the App's, in the order asked.

``ActionThread.do(work, then)`` runs ``work()`` in the thread and hands its result to ``then`` on the event loop
(``ActionDone``, a message: never blocked on an app that has closed). A run folder on a slow or hung file system
leaves the UI answering keys; the screens say what was asked at once and what came of it when it is done. A
``work`` returns what went wrong that the user must hear (a refusal, an OSError's text) as its result; anything
else it raises is logged and told once as a notification naming the action, and the thread goes on.
"""
from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any

from textual.message import Message
from textual.worker import get_current_worker

log = logging.getLogger("reslab.tui")


class ActionDone(Message):
    """An action's work is done: ``then(result)`` runs on the event loop (``App.on_action_done``)."""

    def __init__(self, then: Callable[[Any], None], result: Any):
        super().__init__()
        self.then, self.result = then, result


class ActionThread:
    def __init__(self, app: Any):
        self.app = app
        self._todo: queue.Queue = queue.Queue()
        self._stopped = False

    def start(self) -> None:
        self.app.run_worker(self._loop, thread=True, exit_on_error=False, group="actions", name="run actions")

    def stop(self) -> None:
        self._stopped = True
        self._todo.put(None)

    def do(self, work: Callable[[], Any], then: Callable[[Any], None] | None = None, what: str = "") -> None:
        """Run ``work()`` after the actions asked before it; ``then(its result)`` on the event loop."""
        self._todo.put((work, then, what))

    def _loop(self) -> None:
        worker = get_current_worker()
        while not (self._stopped or worker.is_cancelled):
            item = self._todo.get()
            if item is None:
                continue
            work, then, what = item
            try:
                result = work()
            except Exception as exc:     # told and logged; the next action still runs
                text = f"{what or 'an action'} failed: {type(exc).__name__}: {exc}"
                log.error(text, exc_info=exc)
                self.app.notify(text, title="Action failed", severity="error", timeout=10)     # (thread-safe)
                continue
            if then is not None and not self._stopped:
                self.app.post_message(ActionDone(then, result))
