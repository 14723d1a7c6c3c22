"""What every CLI module shares: the exit codes, the user-facing error, and the flag name of a config field.

Its own module so that ``cli.main`` (parsing), ``cli.commands`` and ``cli.evaluate`` (the work) all import it
without importing each other.
"""
from __future__ import annotations

import signal

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
