"""Quitting while runs train in this app: ask, stop them with a checkpoint (and queue them if asked), and say what
was done: on the screen while it happens, and in the terminal once the app has gone (what was queued, which
scheduler serves it, the commands that follow it)."""
from __future__ import annotations

import asyncio

from core.serve import queue as Q
from core.serve import scheduler_control as S
from core.store.runs import ACTIVE, RunError
from core.util.files import error_text
from core.util.formatting import some_ids

from .confirm import ConfirmScreen


def ask_to_quit(app) -> None:
    """``app``: the ResLabApp (not imported here: it imports this module)."""
    training, waiting = app.in_app[:1], app.in_app[1:]     # the app's queue: the first trains (or is starting)
    lines = [f"{training[0]} trains in this app."] if training else []
    if waiting:
        lines.append(f"{len(waiting)} more wait in this app's queue: {some_ids(waiting)}.")
    lines.append("Stop: it saves a checkpoint and stays resumable (r, or `tui_app.py resume RUN`)"
                 + ("; the waiting runs stay queued for r." if waiting else "."))
    them = "them" if waiting else "it"
    lines.append(f"Queue: stop, then hand {'all of them' if waiting else 'it'} to the folder's queue: the scheduler "
                 f"trains {them} after you quit.")
    answers = [("stop", "Stop & quit", "error"), ("queue", "Queue", "warning"), ("wait", "Keep waiting", "primary")]

    def done(answer: str | None) -> None:
        if answer in ("stop", "queue"):
            app.run_worker(stop_and_quit(app, answer == "queue"), exclusive=True, group="quit")

    app.push_screen(ConfirmScreen("Quit ResLab?", "\n".join(lines), answers, id="confirm-quit"), done)


def scheduler_text(root) -> str:
    """Who trains the folder's queue after the app has gone: the serving scheduler's pid and log, or how to start
    one."""
    state = S.read_state(root)
    if state is None:
        return f"No scheduler serves this folder: start one with tui_app.py scheduler --runs-dir {root}"
    pid = state.get("pid") if isinstance(state, dict) else None
    return f"The scheduler (pid {pid if isinstance(pid, int) else '?'}, log {root / S.LOG_FILE})"


def background_note(app) -> str | None:
    """Quitting with nothing training in the app: what goes on without it (runs in the folder's queue, runs other
    processes train), so the terminal says it as the README promises; None when nothing does."""
    root = app.store.root
    elsewhere = sorted(r for r, info in app.watcher.infos.items() if info.state in ACTIVE and r not in app.in_app)
    waiting = [r for r in app.queue_order if r not in elsewhere]
    if not elsewhere and not waiting:
        return None
    parts = ([f"Still training (not in this app): {some_ids(elsewhere)}"] if elsewhere else []) + \
            ([f"waiting in the folder's queue: {some_ids(waiting)}"] if waiting else [])
    said = "; ".join(parts) + "."
    if waiting:
        said += f" {scheduler_text(root)} starts them."
    return said + f" Follow: tui_app.py queue --runs-dir {root} (or tui_app.py runs --runs-dir {root})."


async def stop_and_quit(app, to_queue: bool) -> None:
    app._quitting = True
    mine = list(app.in_app)
    running = [r for r in mine if app.watcher.infos.get(r) and app.watcher.infos[r].state in ACTIVE]
    waiting = [r for r in mine if r not in running]
    for event in list(app.stop_events.values()):
        event.set()
    app.notify("stopping: saving checkpoints...", timeout=30)
    while app.in_app:
        await asyncio.sleep(0.05)
    root, prog = app.store.root, "tui_app.py"
    if not (to_queue and mine):
        said = []
        if running:
            said.append(f"Stopped with a checkpoint: {', '.join(running)}. Continue with {prog} resume RUN "
                        f"--runs-dir {root} (or r in the app).")
        if waiting:
            said.append(f"Not started, still queued (r in the app starts them): {some_ids(waiting)}.")
        app.exit(" ".join(said) or None, message=" ".join(said) or None)
        return
    said = await asyncio.to_thread(hand_to_queue, app, mine, running, waiting)     # the folders, off the loop
    app.exit(said, message=said)


def hand_to_queue(app, mine: list[str], running: list[str], waiting: list[str]) -> str:
    """(a thread) Queue this app's runs for the folder's scheduler, start one if none serves, and say so."""
    root, prog = app.store.root, "tui_app.py"
    skipped: dict[str, str] = {}
    for run_id in mine:
        try:
            Q.requeue(app.store, run_id)
        except (RunError, OSError) as exc:      # e.g. it finished at this very moment: nothing left to queue
            skipped[run_id] = error_text(exc, app.store.root, "queue it again")
    running, waiting = [r for r in running if r not in skipped], [r for r in waiting if r not in skipped]
    scheduler = app.start_scheduler() if running or waiting else None
    scheduler = None if isinstance(scheduler, OSError) else scheduler
    who = (f"A scheduler started for this runs folder (pid {scheduler.pid}, log {root / S.LOG_FILE})"
           if scheduler is not None else scheduler_text(root))
    parts = ([f"Queued to continue from their checkpoints: {', '.join(running)}"] if running else []) + \
            ([f"queued to start: {some_ids(waiting)}"] if waiting else [])
    said = "; ".join(parts) + (f". {who} trains them in the background. Follow: {prog} queue --runs-dir {root}; "
                               f"stop one: {prog} stop RUN --runs-dir {root}." if parts else "")
    if skipped:
        said += " Not queued: " + "; ".join(f"{r} ({why})" for r, why in skipped.items()) + "."
    return said.strip()
