"""What every CLI module shares: the exit codes, the user-facing error, and the flag name of a config field.

Its own module so that ``cli.main`` (parsing) and the command modules (the work) all import it
without importing each other; ``cli.main`` installs ``StopSignals`` here before importing anything slow.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
STOP_REQUEST_EXIT = 143   # stopped on a `stop` request from another process: like SIGTERM, a polite request


class CliError(Exception):
    """A message for the user and the exit code that goes with it (2: bad input, 1: cannot continue)."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def flag(name: str) -> str:
    """The command-line flag of a RunConfig field: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def check_tensorboard() -> None:
    """--tensorboard needs the tensorboard package: say so before anything is created (exit 1)."""
    from core.train.tensorboard import summary_writer
    from core.util.errors import MissingDependency

    try:
        summary_writer()
    except MissingDependency as exc:
        raise CliError(f"--tensorboard: {exc}", EXIT_FAILED) from None


class Interrupted(Exception):
    """SIGINT or SIGTERM before a run exists: nothing to stop or resume, nothing was written."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class StopSignals:
    """SIGINT and SIGTERM for `train` and `resume`, caught from the very start (installed before torch is imported,
    which takes seconds): before a run exists (``armed`` False) they interrupt at once (``Interrupted``); once it
    does they only set ``event``, and the run stops with a checkpoint (or before training starts)."""

    def __init__(self, armed: bool = False):
        self.event = threading.Event()
        self.received: list[int] = []
        self.armed = armed
        self._previous: dict[int, Any] = {}
        self._wakeup: tuple[socket.socket, socket.socket, int] | None = None

    def install(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNAL_EXIT:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            self._listen()
        return self

    def _listen(self) -> None:
        """Learn of a signal in a thread too: the handler above runs only when the main thread runs Python, which it
        does not inside one long torch call (a first step of minutes: core/train/first_step.py is told at once)."""
        try:
            read, write = socket.socketpair()
            write.setblocking(False)
            previous = signal.set_wakeup_fd(write.fileno(), warn_on_full_buffer=False)
        except (OSError, ValueError):
            return
        self._wakeup = (read, write, previous)

        def listen() -> None:
            while True:
                try:
                    data = read.recv(64)
                except OSError:
                    return
                if not data:
                    return
                if self.armed and any(b in SIGNAL_EXIT for b in data):
                    if not self.received:
                        self.received.append(next(b for b in data if b in SIGNAL_EXIT))
                    self.event.set()
        threading.Thread(target=listen, name="reslab-signals", daemon=True).start()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        if self._wakeup is not None:
            read, write, previous = self._wakeup
            self._wakeup = None
            signal.set_wakeup_fd(previous)
            write.close()
            read.shutdown(socket.SHUT_RDWR)
            read.close()

    def exit_now(self, what: str, before: Callable[[], object] | None = None) -> None:
        """End the process at once with the stop's exit code, after one line (``what``) and ``before`` (the --on-end
        command, started detached): for a trainer stopped before its first step completed (core/train/first_step.py,
        core/train/compile_watch.py), whose main thread may be inside a torch call."""
        try:
            if before is not None:
                before()
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[?25h")        # the progress display hid the cursor
            print(f"\n{what}", flush=True)
        finally:
            os._exit(self.exit_code())

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        self.event.set()
        if not self.armed:
            raise Interrupted(signum)

    def name(self) -> str:
        """What stopped us, for the user: 'SIGINT (Ctrl-C)', 'SIGTERM' or 'a stop request'."""
        if not self.received:
            return "a stop request"
        return {signal.SIGINT: "SIGINT (Ctrl-C)", signal.SIGTERM: "SIGTERM"}.get(self.received[0], "a signal")

    def exit_code(self) -> int:
        return SIGNAL_EXIT.get(self.received[0], STOP_REQUEST_EXIT) if self.received else STOP_REQUEST_EXIT
