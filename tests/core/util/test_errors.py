"""What a best-effort step swallows is logged, never dropped unseen (core/util/errors.py ``carry_on``)."""
from __future__ import annotations

import logging
import threading

import pytest

from core.util.errors import carry_on


def test_carry_on_logs_what_it_swallowed_with_its_traceback(caplog):
    log = logging.getLogger("reslab-test")
    with caplog.at_level(logging.DEBUG, logger="reslab-test"):
        with carry_on(log, "a status write"):
            raise OSError(28, "No space left on device")
        with carry_on(log, "releasing a lock", logging.WARNING):
            raise RuntimeError("gone")
    assert [(r.levelno, r.getMessage(), r.exc_info[0]) for r in caplog.records] == [
        (logging.DEBUG, "a status write failed; carried on", OSError),
        (logging.WARNING, "releasing a lock failed; carried on", RuntimeError)]


def test_carry_on_lets_an_interrupt_through():
    with pytest.raises(KeyboardInterrupt), carry_on(logging.getLogger("reslab-test"), "x"):
        raise KeyboardInterrupt


def test_a_heartbeat_that_fails_during_a_long_step_is_logged(caplog):
    """The heartbeat thread of a compile once dropped its failures (``contextlib.suppress(Exception)``)."""
    from core.train.pace import beating

    failed = threading.Event()

    def beat():
        failed.set()
        raise OSError(28, "No space left on device")

    with caplog.at_level(logging.DEBUG, logger="core.train.pace"), beating(beat, every_s=0.01):
        assert failed.wait(30)
    assert any(r.getMessage() == "a heartbeat failed; carried on" and r.exc_info[0] is OSError
               for r in caplog.records)
