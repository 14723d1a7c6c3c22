"""Errors that more than one package raises and every client catches the same way, and ``carry_on`` for a step
whose failure must not stop what runs it."""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


class ReportError(ValueError):
    """Runs that cannot make a table or figure: the message says what is wrong and what to do."""


class MissingDependency(ReportError):
    """matplotlib or tensorboard is not installed: the message names the pip command."""


@contextlib.contextmanager
def carry_on(log: logging.Logger, what: str, level: int = logging.DEBUG) -> Iterator[None]:
    """Run a best-effort step whose failure must not end its caller (a heartbeat on a full disk, a peer's store that
    is gone): a failure is logged on ``log`` with its traceback ("<what> failed; carried on"), never dropped unseen.
    ``level``: DEBUG where the failure is expected and said elsewhere, WARNING where nothing else would say it."""
    try:
        yield
    except Exception:
        log.log(level, "%s failed; carried on", what, exc_info=True)
