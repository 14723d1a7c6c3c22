"""The user's command when a run ends: ``--on-end CMD`` (train, queue add, scheduler) or the ``on_end`` setting.

Whoever trains a run starts it once the run has ended (finished, stopped, failed, diverged, out of memory, crashed
for good): ``train --on-end`` for its run, the scheduler for the runs it serves (``--on-end``, else the setting), the
TUI for the runs it trains itself (the setting, ``settings.json`` in the config folder: core/store/settings.py). So a
run's command runs once, whether or not a TUI watches. ``--on-end ''`` turns the setting off for a scheduler.

The command runs through the shell (``sh -c CMD``) in a process of its own (``start`` returns at once, never waiting
for it: training and the caller's exit are never delayed), with the run's facts in its environment (``run_env``). A
command that fails (exit code not 0, not startable, or still running after ``TIMEOUT_S``: then killed with its
children) gets a line in the run's events.log; the run's state is never touched.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from core.store.info import RunInfo
from core.store.runs import Run
from core.store.settings import load_settings

ENDINGS = ("finished", "stopped", "failed", "diverged", "out-of-memory", "crashed")
TIMEOUT_S = 120.0                     # a webhook that hangs is killed after this long
SETTING = "on_end"
_ROOT = str(Path(__file__).resolve().parents[2])
_CMD_ENV, _TIMEOUT_ENV = "RESLAB_ON_END_CMD", "RESLAB_ON_END_TIMEOUT"
_TAIL = 400                           # characters of the command's output kept in events.log


def configured(given: str | None = None) -> str:
    """The command to run: ``given`` (``--on-end``; '' for none) when given, else the user's ``on_end`` setting."""
    if given is not None:
        return given.strip()
    value = load_settings().get(SETTING)
    return value.strip() if isinstance(value, str) else ""


def run_env(info: RunInfo) -> dict[str, str]:
    """What the command learns about the run: its id, state, folder, final test error (percent, '' when none), error
    text (failed, diverged ...), epochs done and planned."""
    err = info.final_test_err
    return {"RESLAB_RUN_ID": info.id, "RESLAB_RUN_STATE": info.state, "RESLAB_RUN_DIR": str(info.path.resolve()),
            "RESLAB_RUNS_DIR": str(info.path.resolve().parent),
            "RESLAB_TEST_ERR": f"{err:.2f}" if isinstance(err, (int, float)) else "",
            "RESLAB_RUN_ERROR": info.error, "RESLAB_RUN_EPOCHS": f"{info.epochs_done}/{info.total_epochs or '?'}"}


def start(cmd: str | None, run: Run, timeout_s: float = TIMEOUT_S) -> subprocess.Popen | None:
    """Start ``cmd`` for ``run`` in a detached process when there is a command and the run has ended; its Popen (the
    caller may forget it), else None. Never raises: a failure to start is logged in the run's events.log."""
    if not cmd:
        return None
    try:
        info = run.info()
        if info.state not in ENDINGS:
            return None
        env = {**os.environ, **run_env(info), _CMD_ENV: cmd, _TIMEOUT_ENV: f"{timeout_s:g}"}
        boot = f"import sys; sys.path.insert(0, {_ROOT!r}); from core.serve.on_end import main; sys.exit(main())"
        return subprocess.Popen([sys.executable, "-c", boot, str(run.path.resolve())], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    except Exception as exc:  # noqa: BLE001 - the user's hook must never end training or the app
        _log(run, f"on-end command not started: {type(exc).__name__}: {exc}")
        return None


def _log(run: Run, message: str) -> None:
    try:
        run.log(message)
    except OSError:
        pass


def main() -> int:
    """The detached process: run the command, wait at most its timeout, log a failure in the run's events.log."""
    run = Run(Path(sys.argv[1]))
    env = dict(os.environ)
    cmd, timeout_s = env.pop(_CMD_ENV, ""), float(env.pop(_TIMEOUT_ENV, TIMEOUT_S))
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", cmd], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as exc:
        _log(run, f"on-end command not started: {exc} (command: {cmd})")
        return 1
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        _log(run, f"on-end command still running after {timeout_s:g} s: killed (command: {cmd})")
        return 1
    if proc.returncode:
        tail = out.decode(errors="replace").strip()[-_TAIL:]
        _log(run, f"on-end command failed with exit code {proc.returncode} (command: {cmd})"
                  + (f"\n{tail}" if tail else ""))
    return 1 if proc.returncode else 0
