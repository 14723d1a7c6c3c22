"""Start training in a background process that outlives its parent (the TUI closing, an ssh session dropping).

``spawn_background(runs_dir, run_id)`` runs ``python <repo>/tui_app.py resume <run_id> --runs-dir <abs dir>`` in a
new session (no controlling terminal, so SIGHUP does not reach it), stdin from /dev/null, stdout and stderr appended
to ``<run>/process.log``, with ``NO_COLOR=1``: the CLI then prints plain lines there. The run folder stays the
bus: the caller watches status.json like any other run, and stops it with ``Run.request("stop")``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .runs import RunStore

ENTRY_POINT = Path(__file__).resolve().parents[1] / "tui_app.py"


def background_command(runs_dir: str | os.PathLike, run_id: str) -> list[str]:
    return [sys.executable, str(ENTRY_POINT), "resume", str(run_id), "--runs-dir", str(Path(runs_dir).resolve())]


def spawn_background(runs_dir: str | os.PathLike, run_id: str) -> subprocess.Popen:
    """Train ``run_id`` (queued, stopped or crashed) in a detached process; returns its Popen at once.

    Raises RunError for an unknown or invalid run id. The child's own exit code follows the CLI's
    (0 finished, 1 failed, 143 stopped by a request); its output is in ``<run>/process.log``.
    """
    run = RunStore(runs_dir).get(run_id)
    env = {**os.environ, "NO_COLOR": "1", "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
    with open(run.path / "process.log", "ab") as log:
        return subprocess.Popen(background_command(runs_dir, run.id), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, env=env)
