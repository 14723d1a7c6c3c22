"""Quitting while runs train in this app: ask, stop them with a checkpoint (and queue them if asked), and say what
was done: on the screen while it happens, and in the terminal once the app has gone (what was queued, which
scheduler serves it, the commands that follow it)."""
from __future__ import annotations

import asyncio
from core import queue as Q
from core.runs import ACTIVE, RunError

from .confirm import ConfirmScreen


def ask_to_quit(app) -> None:
    """``app``: the ResLabApp (not imported here: it imports this module)."""
    training = [r for r in app.in_app if app.watcher.infos.get(r) and app.watcher.infos[r].state in ACTIVE]
    queued = [r for r in app.in_app if r not in training]
    lines = [f"{len(training) or len(app.in_app)} run(s) train in this app: {', '.join(app.in_app[:4])}."]
    lines.append("Stop: each saves a checkpoint and stays resumable (r, or `tui_app.py resume RUN`).")
    lines.append("Queue: stop, then continue each in the queue (the scheduler resumes it after you quit).")
    if queued:
        lines.append(f"{len(queued)} queued run(s) stay queued.")
    answers = [("stop", "Stop & quit", "error"), ("queue", "Queue", "warning"), ("wait", "Keep waiting", "primary")]

    def done(answer: str | None) -> None:
        if answer in ("stop", "queue"):
            app.run_worker(stop_and_quit(app, answer == "queue"), exclusive=True, group="quit")

    app.push_screen(ConfirmScreen("Quit ResLab?", "\n".join(lines), answers, id="confirm-quit"), done)


async def stop_and_quit(app, to_queue: bool) -> None:
    app._quitting = True
    running = [r for r in app.in_app if app.watcher.infos.get(r) and app.watcher.infos[r].state in ACTIVE]
    for event in list(app.stop_events.values()):
        event.set()
    app.notify("stopping: saving checkpoints...", timeout=30)
    while app.in_app:
        await asyncio.sleep(0.05)
    root, prog = app.store.root, "tui_app.py"
    if not (to_queue and running):
        said = (f"Stopped with a checkpoint: {', '.join(running)}. Continue with {prog} resume RUN --runs-dir {root} "
                f"(or r in the app)." if running else None)
        app.exit(said, message=said)
        return
    for run_id in running:
        try:
            Q.requeue(app.store, run_id)
        except (RunError, OSError) as exc:
            app.notify(f"cannot queue {run_id}: {exc}", severity="error")
            app._quitting = False
            return
    scheduler = app.serve_queue()
    who = (f"A scheduler started for it (pid {scheduler.pid}, log {root / 'scheduler.log'})" if scheduler is not None
           else "The scheduler already serving this folder")
    said = (f"Queued to continue from their checkpoints: {', '.join(running)}. {who} trains them in the background. "
            f"Follow: {prog} queue --runs-dir {root}; stop one: {prog} stop RUN --runs-dir {root}.")
    app.exit(said, message=said)
