"""The App's run actions (screens/app.py mixes them in): launch runs, and stop, pause or continue, resume and delete
one, whichever screen asks. A dialog checks the run as its folder says now (``live_info``, not as the last poll saw it)
with core/store/rules.py before asking and again when answered, so it never offers what the run's state refuses.
In-app runs go through the App's own queue (screens/in_app_queue.py); others through their folder (a request file,
Slurm's queue) or the folder's queue and its scheduler (``start_scheduler``).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from core.serve import queue as Q
from core.serve.slurm import SlurmUnavailable, cancel_pending
from core.spec.config import RunConfig
from core.store.rules import (
    Refusal,
    continue_refusal,
    delete_refusal,
    offer_resume_refusal,
    pause_refusal,
    stop_refusal,
)
from core.store.runs import ACTIVE, Run, RunError, RunInfo, names_taken_text
from core.util.files import error_text
from core.util.formatting import some_ids


class RunActions:
    """Mixed into ResLabApp: uses its store, watcher, queue (``in_app``, ``ended_here``, ``grids``, ``marked``),
    ``actions`` (screens/action_thread.py: each action's file work, off the event loop), ``poll_runs`` and
    ``start_training``. What the watcher's listing says decides at once (no file read); what only the folder can
    say now (a dialog's answer after the run may have ended) is read in the actions thread."""

    def launch(self, configs: list[RunConfig], where: str = "app", note: str | None = None,
               then: Callable[[list[str]], None] | None = None) -> None:
        """Create one run per config (a grid when several) and start them: in the folder's queue (``"queue"``,
        served by the scheduler) or in this app, one after another; ``then(run ids)`` once they are created and
        listed (``[]`` when refused). ``note`` (the form's milestone scaling) goes into each run's events.log, as
        the CLI's does. A run that cannot be created (a name taken, a full or read-only disk) is a notification."""
        self.actions.do(partial(self._create_runs, configs, where, note), partial(self._created, where, then),
                        f"creating {len(configs)} run(s)")

    def _create_runs(self, configs: list[RunConfig], where: str, note: str | None) -> tuple[list[str], str, Any]:
        """(the actions thread) The run folders, or why none; and the scheduler started for a queue's runs."""
        try:
            if taken := self.store.taken_names(configs):     # since the form checked (it checks the app's listing)
                raise RunError(f"{names_taken_text(taken, self.store.root)}; pick another name")
            runs = Q.enqueue(self.store, configs) if where == "queue" else [self.store.create(c) for c in configs]
            for run in runs if note else ():
                run.log(note)
        except (RunError, OSError) as exc:
            return [], error_text(exc, self.store.root, "launch again"), None
        return [run.id for run in runs], "", self.start_scheduler() if where == "queue" else None

    def _created(self, where: str, then, result: tuple[list[str], str, Any]) -> None:
        ids, error, started = result
        if error:
            self.notify(error, title="Cannot create the run", severity="error", timeout=10)
        self.scheduler_started(started)
        if ids and where != "queue":
            self.start_training(ids)
        if len(ids) > 1:
            self.grids.update({run_id: ids for run_id in ids})     # the monitor follows the grid
        self.poll_runs(*ids, then=partial(then, ids) if then is not None else None)

    def confirm_stop(self, run_id: str | None) -> None:
        """Ask, then stop: the trainer checkpoints at the next iteration and leaves a resumable run."""
        if run_id is None:
            return
        info = self.watcher.infos.get(run_id)
        refused = stop_refusal(info, queued_here=run_id in self.in_app) if info else None
        if info is None and run_id not in self.in_app:
            self.notify(f"{run_id} is gone; nothing to stop", severity="warning")
            return
        if refused is not None:
            self.notify(f"{run_id} {refused.text}; nothing to stop", severity="warning")
            return
        later = self.queue.after(run_id)
        answers = [("stop", "Stop", "error")]
        if later:
            answers.append(("stop-all", f"Stop + {len(later)} queued", "warning"))
        answers.append(("cancel", "Keep training", "primary"))
        where = "this app" if run_id in self.in_app else "another process"
        question = (f"{run_id} ({where}) stops at the next iteration and saves a checkpoint; "
                    f"press r on it later to resume exactly where it stopped.")
        if later:
            question += (f"\n{len(later)} queued run(s) follow it in this app: {some_ids(later)}.\nStop: the next of "
                         f"them starts. Stop + {len(later)} queued: none of them starts (they stay queued for r).")

        def done(answer: str | None) -> None:
            if answer not in ("stop", "stop-all"):
                return
            self.stop_run(run_id, check=True)       # it may have ended while the question was open
            if answer == "stop-all":
                for other in later:
                    self.stop_run(other)

        from .confirm import ConfirmScreen

        self.push_screen(ConfirmScreen(f"Stop {run_id}?", question, answers, id="confirm-stop"), done)

    def stop_run(self, run_id: str, check: bool = False) -> None:
        """Stop a run: this app's at once (its stop event), another process's through its folder (a request file,
        or Slurm's queue while it waits there) in the actions thread. ``check``: only if its folder says now that it
        can stop."""
        if self.queue.request_stop(run_id):
            self._stopping(run_id, None)
            return
        self.actions.do(partial(self._stop_folder, run_id, check), partial(self._stopping, run_id),
                        f"stopping {run_id}")

    def _stop_folder(self, run_id: str, check: bool) -> tuple[str, str] | None:
        """(the actions thread) None once asked, else what to tell and how (a refusal, Slurm's answer, an error)."""
        if check:
            now = self.live_info(run_id)
            if now is None or (refused := stop_refusal(now)) is not None:
                return f"{run_id} {refused.text if now else 'is gone'}; nothing to stop", "warning"
        try:
            run = self.store.get(run_id)
            cancelled = cancel_pending(run) if run.read_job() else None   # still waiting in Slurm's queue
            if cancelled:
                return f"{run_id}: {cancelled}", "information"
            run.request("stop")
        except (RunError, SlurmUnavailable, OSError) as exc:
            return f"cannot stop {run_id}: {error_text(exc, self.store.root / run_id, 'stop it again')}", "error"
        return None

    def _stopping(self, run_id: str, told: tuple[str, str] | None) -> None:
        if told is not None:
            self.notify(told[0], severity=told[1], timeout=4 if told[1] == "information" else 5)
            return
        info = self.watcher.infos.get(run_id)
        now = info is not None and info.status.get("compile_stop") == "now"     # core/train/compile_watch.py
        when = ("now: its compile is abandoned" if now else "checkpoint after the compile") \
            if info is not None and info.phase else "checkpoint at the next iteration"
        self.notify(f"stopping {run_id} ({when})", timeout=4)
        self.poll_runs(run_id)

    def toggle_pause(self, run_id: str | None) -> None:
        if run_id is None:
            return
        info = self.watcher.infos.get(run_id)
        state = info.state if info else "gone"
        if state in ACTIVE and (paused := self.queue.toggle_pause(run_id)) is not None:
            self.notify(f"{run_id}: pausing (nothing is freed; p continues)" if paused else f"{run_id}: continuing",
                        timeout=3)
            return
        if pause_refusal(state) and continue_refusal(state):     # neither running nor paused
            self.notify(f"{run_id} {pause_refusal(state).text}", severity="warning")
            return
        ask = "continue" if state == "paused" else "pause"

        def work() -> str | None:
            try:
                self.store.get(run_id).request(ask)
            except (RunError, OSError) as exc:
                return f"cannot ask {run_id} to {ask}: {error_text(exc, self.store.root / run_id)}"
            return None

        def done(error: str | None) -> None:
            self.notify(error or f"{run_id}: {ask} requested", severity="error" if error else "information",
                        timeout=5 if error else 3)
            self.poll_runs(run_id)

        self.actions.do(work, done, f"asking {run_id} to {ask}")

    def resume_run(self, run_id: str | None, where: str = "app", why: str | None = None) -> bool:
        """Resume a run "app" (here), "queue" (the folder's scheduler) or "auto": where it was launched, so a run
        launched into the queue goes back to the queue (r on it never trains it here beside the scheduler's runs)."""
        if run_id is None:
            return False
        info = self.watcher.infos.get(run_id)
        state = info.state if info else "gone"
        if run_id in self.in_app:
            self.notify(f"{run_id} is already queued or training in this app", severity="warning")
            return False
        refused = offer_resume_refusal(info) if info is not None else None
        if info is None or refused is not None:
            hint = {"finished": "; x on its detail screen trains it for more epochs",
                    "active": " (p continues it)" if state == "paused" else "",
                    "diverged": "; start a new run (n, or c to clone it) with a lower lr or a warm-up"}
            why = refused.text + hint.get(refused.kind, "") if refused else "is gone"
            self.notify(f"cannot resume {run_id}: it {why}", severity="warning")
            return False
        if where == "auto":     # where it was launched: its queue.json says (read in the actions thread)
            self.actions.do(partial(self._launched_to_queue, run_id),
                            lambda queued: self._resume(run_id, "queue" if queued else "app", why),
                            f"resuming {run_id}")
        else:
            self._resume(run_id, where, why)
        return True

    def _resume(self, run_id: str, where: str, why: str | None) -> None:
        if where == "queue":
            self.actions.do(partial(self._requeue, run_id, why), partial(self._requeued, run_id),
                            f"queueing {run_id}")
        else:
            self.start_training([run_id])
            self.notify(f"resuming {run_id} in this app", timeout=3)

    def _launched_to_queue(self, run_id: str) -> bool:
        """(the actions thread) Whether the run went through the folder's queue (only those have a queue.json)."""
        try:
            return Q.read_entry(self.store.get(run_id)) is not None
        except RunError:
            return False

    def _requeue(self, run_id: str, why: str | None) -> tuple[str, Any]:
        """(the actions thread) Into the folder's queue, next; ('', the scheduler started) or (why not, None)."""
        try:
            Q.requeue(self.store, run_id, why=why)
            Q.move(self.store, run_id, 1)     # asked for now: it goes next, not behind the waiting runs
        except (RunError, OSError) as exc:
            return f"cannot queue {run_id}: {error_text(exc, self.store.root / run_id)}", None
        return "", self.start_scheduler()

    def _requeued(self, run_id: str, result: tuple[str, Any]) -> None:
        error, started = result
        if error:
            self.notify(error, severity="warning")
        else:
            self.ended_here.discard(run_id)     # the scheduler trains it now: its end is told as theirs
            self.scheduler_started(started)
            self.notify(f"{run_id} is queued; the scheduler resumes it from its checkpoint", timeout=4)
        self.poll_runs(run_id)

    def confirm_delete(self, run_id: str | None, after=None) -> None:
        """Ask, then delete the run's folder; refused (no question) for a run a live process owns, as its folder
        says now (read in the actions thread, not as the last poll saw it)."""
        if run_id is None:
            return

        def work() -> str | None:
            info = self.live_info(run_id)
            refused = delete_refusal(info, in_app=run_id in self.in_app)
            if refused is None and info is not None and info.state == "queued" and Run(info.path).is_locked():
                refused = Refusal("active", "is starting in another process; stop it before deleting")
            return None if info is not None and refused is None else (refused.text if refused else "is gone")

        self.actions.do(work, partial(self._ask_delete, run_id, after), f"checking {run_id}")

    def _ask_delete(self, run_id: str, after, refused: str | None) -> None:
        if refused is not None:
            self.notify(f"{run_id} {refused}", severity="warning")
            self.poll_runs()
            return
        from .confirm import ConfirmScreen

        def done(answer: str | None) -> None:
            if answer == "delete":      # a folder of big checkpoints takes a while to remove
                self.actions.do(partial(self._delete, run_id), partial(self._deleted, run_id, after),
                                f"deleting {run_id}")

        self.push_screen(ConfirmScreen(f"Delete {run_id}?", f"This removes the folder {self.store.root / run_id} "
                                       "with its checkpoint and logs. It cannot be undone.",
                                       [("delete", "Delete", "error"), ("cancel", "Keep", "primary")],
                                       id="confirm-delete", focus="cancel"), done)

    def _delete(self, run_id: str) -> str | None:
        try:
            self.store.delete(run_id)
        except (RunError, OSError) as exc:
            return f"cannot delete {run_id}: {error_text(exc, self.store.root, 'delete it again')}"
        return None

    def _deleted(self, run_id: str, after, error: str | None) -> None:
        if error:
            self.notify(error, severity="error")
            return
        self.marked.discard(run_id)
        self.notify(f"deleted {run_id}", timeout=3)
        self.poll_runs()
        if after is not None:
            after()

    def live_info(self, run_id: str) -> RunInfo | None:
        """(the actions thread) The run as its folder says now; None when gone."""
        try:
            return self.store.get(run_id).info()
        except RunError:
            return None
