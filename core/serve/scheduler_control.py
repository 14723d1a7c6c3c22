"""The scheduler of a runs folder seen from outside (the CLI's ``queue`` and ``scheduler``, the app, ``study``): whether
one serves the folder and what it last wrote (``read_state``, ``describe``), starting one in the background
(``start_detached``) and asking it to leave (``stop``). The scheduler itself is core/serve/scheduler.py.

A scheduler holds ``<runs>/scheduler.lock`` while it serves, writes what it does to ``<runs>/scheduler.log`` and its
slots to ``<runs>/scheduler.json``: names no run may take (core/spec/config.py ``RUNS_FOLDER_FILES``).
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

from core.serve.launch import ENTRY_POINT, detached, plain_env
from core.spec.config import RUNS_FOLDER_FILES
from core.store import reader
from core.store.lock import FileLock

LOCK_FILE, STATE_FILE, LOG_FILE = RUNS_FOLDER_FILES     # names no run may take (RunConfig.validate)


class SchedulerRunning(Exception):
    """Another scheduler serves this runs folder; the message says which."""


def lock_of(runs_dir: str | os.PathLike) -> FileLock:
    return FileLock(Path(runs_dir) / LOCK_FILE)


def read_state(runs_dir: str | os.PathLike) -> dict | None:
    """What the serving scheduler last wrote (pid, devices, slots ...), or None when no scheduler serves the folder;
    {} when it wrote nothing yet, or nothing of the types it writes (checked by core/store/reader.py)."""
    if not lock_of(runs_dir).is_locked():
        return None
    try:
        return reader.read_scheduler_state(Path(runs_dir) / STATE_FILE)
    except (OSError, ValueError):
        return {}


def describe(runs_dir: str | os.PathLike) -> str:
    """One line about the scheduler serving a folder (for 'already served' messages), control characters escaped."""
    state = read_state(runs_dir) or {}
    holder = lock_of(runs_dir).holder().split()
    pid = state.get("pid") or (holder[0] if holder else "?")
    slots = ", ".join(s["slot"] for s in state.get("slots", [])) or "its slots"
    return reader.escape_controls(f"a scheduler (pid {pid}) already serves {Path(runs_dir).resolve()} on {slots}; "
                                  f"log: {Path(runs_dir).resolve() / LOG_FILE}")    # (names read from its files)


def scheduler_command(runs_dir: str | os.PathLike, options: list[str]) -> list[str]:
    return [sys.executable, str(ENTRY_POINT), "scheduler", "--foreground", *options,
            "--runs-dir", str(Path(runs_dir).resolve())]


def start_detached(runs_dir: str | os.PathLike, options: list[str] = ()):
    """Start ``tui_app.py scheduler --foreground OPTIONS`` in its own session unless a scheduler serves the folder.

    Returns its Popen, or None when one already serves. Its log is <runs>/scheduler.log (stderr goes there too)."""
    root = Path(runs_dir)
    if lock_of(root).is_locked():
        return None
    root.mkdir(parents=True, exist_ok=True)
    return detached(scheduler_command(root, list(options)), root / LOG_FILE, plain_env(), stdout_to_log=False)


def stop(runs_dir: str | os.PathLike, timeout: float = 10.0) -> bool:
    """Ask the scheduler serving a folder on this host to leave (SIGTERM); True once it has. Runs keep training."""
    lock = lock_of(runs_dir)
    holder = lock.holder().split()
    if not lock.is_locked() or len(holder) < 2 or holder[1] != socket.gethostname():
        return not lock.is_locked()
    try:
        os.kill(int(holder[0]), signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not lock.is_locked():
            return True
        time.sleep(0.05)
    return False
