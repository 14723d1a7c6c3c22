"""Telling the user that a run ended while they look elsewhere: the text of the app's notification, and a desktop
notification through the terminal (OSC 9 or OSC 777) where the terminal is known to show one.

A terminal that does not know an OSC sequence may print it, or a multiplexer may swallow it, so the sequence is sent
only to terminals known to support it (``$TERM_PROGRAM``, ``$TERM``, kitty's variable), never inside tmux or screen
unless asked: ``RESLAB_TERMINAL_NOTIFY=osc9|osc777|off`` overrides the guess (inside tmux a forced one is wrapped
for tmux's passthrough, which needs ``set -g allow-passthrough on``). The text is stripped of control characters
(an error message could otherwise end the sequence and write to the screen) and shortened.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from core.serve import on_end
from core.store.info import RunInfo
from core.store.runs import RunError
from core.util.formatting import pct

ALERTS = ("finished", "failed", "diverged", "out-of-memory", "crashed")   # ends worth a notification
OVERRIDE_ENV = "RESLAB_TERMINAL_NOTIFY"
OSC9_PROGRAMS = ("iTerm.app", "WezTerm", "ghostty")
MAX_TEXT = 200
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def tell_ended(app: Any, run_id: str, state: str, message: str = "", trained_here: bool = False) -> None:
    """A run ended: a notification on whatever screen is shown, a desktop one through the terminal (the ends in
    ``ALERTS``), and for a run this app trained, the user's ``on_end`` command (core/serve/on_end.py; the scheduler
    or the CLI runs it for the runs they train)."""
    info = app.watcher.infos.get(run_id)
    text = end_text(run_id, state, info, message)
    app.notify(text, title="Run ended", severity="information" if state in ("finished", "stopped") else "error",
               timeout=8)
    if state in ALERTS and (seq := terminal_sequence("ResLab", text)):
        write_terminal(app, seq)
    if trained_here and (command := on_end.configured(None)):
        def start() -> None:                        # (the run's files and a process: the actions thread)
            try:
                on_end.start(command, app.store.get(run_id))
            except RunError:
                pass                                # deleted meanwhile: nothing to tell the command about

        app.actions.do(start, what=f"the on_end command of {run_id}")


def write_terminal(app: Any, seq: str) -> None:
    """Through Textual's driver (its output thread, between frames), as Textual writes OSC 52; not when headless."""
    if not app.is_headless and app._driver is not None:
        app._driver.write(seq)


def end_text(run_id: str, state: str, info: RunInfo | None, message: str = "") -> str:
    """``r-12 finished: test error 8.75% (paper 8.75%)``; the error on a second line for a failure."""
    text = f"{run_id} {state}"
    if info is not None and info.final_test_err is not None:
        text += f": test error {pct(info.final_test_err)}"
        if info.paper_err is not None:
            text += f" (paper {pct(info.paper_err)})"
    message = message or (info.error if info is not None else "")
    if message and state != "finished":
        text += f"\n{message}"
    return text


def terminal_kind(env: Mapping[str, str] | None = None) -> str:
    """"osc9", "osc777" or "" (none): the override, else what the terminal is known to support."""
    env = os.environ if env is None else env
    forced = env.get(OVERRIDE_ENV, "").strip().lower()
    if forced in ("osc9", "osc777"):
        return forced
    if forced or env.get("TMUX") or env.get("STY"):
        return ""                               # off, or a multiplexer between us and the terminal
    term = env.get("TERM", "")
    if env.get("TERM_PROGRAM") in OSC9_PROGRAMS or env.get("KITTY_WINDOW_ID") or term in ("xterm-kitty",
                                                                                          "xterm-ghostty"):
        return "osc9"
    if term.startswith("foot"):
        return "osc777"
    return ""


def clean(text: str, separator: bool = False) -> str:
    text = _CONTROLS.sub(" ", text).strip()
    if separator:
        text = text.replace(";", ",")           # OSC 777 separates its fields with ';'
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def terminal_sequence(title: str, body: str, env: Mapping[str, str] | None = None) -> str:
    """The escape sequence that shows a desktop notification ('' where none is known to work)."""
    env = os.environ if env is None else env
    kind = terminal_kind(env)
    if kind == "osc9":
        seq = f"\x1b]9;{clean(f'{title}: {body}')}\x07"
    elif kind == "osc777":
        seq = f"\x1b]777;notify;{clean(title, separator=True)};{clean(body, separator=True)}\x07"
    else:
        return ""
    if env.get("TMUX"):
        seq = "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq
