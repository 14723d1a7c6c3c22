"""The App's run actions (screens/app.py mixes them in): launch runs, and stop, pause or continue, resume and delete
one, whichever screen asks. A dialog checks the run as its folder says now (``live_info``, not as the last poll saw it)
with core/store/rules.py before asking and again when answered, so it never offers what the run's state refuses.
In-app runs go through the App's own queue (screens/in_app_queue.py); others through their folder (a request file,
Slurm's queue) or the folder's queue and its scheduler (``serve_queue``).
"""
from __future__ import annotations

from functools import partial

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
    ``poll_runs``, ``start_training`` and ``serve_queue``."""

    def launch(self, configs: list[RunConfig], where: str = "app", note: str | None = None) -> list[str]:
        """Create one run per config (a grid when several) and start them: in the folder's queue (``"queue"``,
        served by the scheduler) or in this app, one after another; returns the run ids. ``note`` (the form's
        milestone scaling) goes into each run's events.log, as the CLI's does. A run that cannot be created (a full
        or read-only disk) is a notification, not a crash."""
        try:
            if taken := self.store.taken_names(configs):     # since the form checked (it checks the app's listing)
                raise RunError(f"{names_taken_text(taken, self.store.root)}; pick another name")
            if where == "queue":
                runs = Q.enqueue(self.store, configs)
            else:
                runs = [self.store.create(cfg) for cfg in configs]
            for run in runs if note else ():
                run.log(note)
            ids = [run.id for run in runs]
            if where == "queue":
                self.serve_queue()
            else:
                for run_id in ids:
                    self.poll_runs(run_id, now=True)
                self.start_training(ids)
            if len(ids) > 1:
                self.grids.update({run_id: ids for run_id in ids})     # the monitor follows the grid
        except RunError as exc:
            self.notify(str(exc), title="Cannot create the run", severity="error", timeout=10)
            ids = []
        self.poll_runs()
        return ids

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
            now = self.live_info(run_id)    # it may have ended while the question was open
            if run_id not in self.in_app and (now is None or stop_refusal(now) is not None):
                self.notify(f"{run_id} {stop_refusal(now).text if now else 'is gone'}; nothing to stop",
                            severity="warning")
            else:
                self.stop_run(run_id)
            if answer == "stop-all":
                for other in later:
                    self.stop_run(other)

        from .confirm import ConfirmScreen

        self.push_screen(ConfirmScreen(f"Stop {run_id}?", question, answers, id="confirm-stop"), done)

    def stop_run(self, run_id: str) -> None:
        if not self.queue.request_stop(run_id):
            try:
                run = self.store.get(run_id)
                cancelled = cancel_pending(run) if run.read_job() else None   # still waiting in Slurm's queue
                if cancelled:
                    self.notify(f"{run_id}: {cancelled}", timeout=4)
                    return
                run.request("stop")
            except (RunError, SlurmUnavailable, OSError) as exc:
                self.notify(f"cannot stop {run_id}: {error_text(exc, self.store.root / run_id, 'stop it again')}",
                            severity="error")
                return
        info = self.watcher.infos.get(run_id)
        now = info is not None and info.status.get("compile_stop") == "now"     # core/train/compile_watch.py
        when = ("now: its compile is abandoned" if now else "checkpoint after the compile") \
            if info is not None and info.phase else "checkpoint at the next iteration"
        self.notify(f"stopping {run_id} ({when})", timeout=4)

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
        try:
            self.store.get(run_id).request("continue" if state == "paused" else "pause")
        except (RunError, OSError) as exc:
            self.notify(f"cannot ask {run_id} to {'continue' if state == 'paused' else 'pause'}: "
                        f"{error_text(exc, self.store.root / run_id)}", severity="error")
            return
        self.notify(f"{run_id}: {'continue' if state == 'paused' else 'pause'} requested", timeout=3)

    def resume_run(self, run_id: str | None, where: str = "app", why: str | None = None) -> bool:
        """Resume a run "app" (here), "queue" (the folder's scheduler) or "auto": where it was launched, so a run
        launched into the queue goes back to the queue (r on it never trains it here beside the scheduler's runs)."""
        if run_id is None:
            return False
        if where == "auto":
            where = "queue" if self._launched_to_queue(run_id) else "app"
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
        if where == "queue":
            try:
                Q.requeue(self.store, run_id, why=why)
                self.ended_here.discard(run_id)     # the scheduler trains it now: its end is told as theirs
                Q.move(self.store, run_id, 1)     # asked for now: it goes next, not behind the waiting runs
            except RunError as exc:
                self.notify(f"cannot queue {run_id}: {exc}", severity="warning")
                return False
            self.serve_queue()
            self.notify(f"{run_id} is queued; the scheduler resumes it from its checkpoint", timeout=4)
            self.poll_runs()
        else:
            self.start_training([run_id])
            self.notify(f"resuming {run_id} in this app", timeout=3)
        return True

    def _launched_to_queue(self, run_id: str) -> bool:
        try:
            return Q.read_entry(self.store.get(run_id)) is not None    # only queued runs have a queue.json
        except RunError:
            return False

    def confirm_delete(self, run_id: str | None, after=None) -> None:
        """Ask, then delete the run's folder; refused at once (no question) for a run a live process owns."""
        if run_id is None:
            return
        info = self.live_info(run_id)       # the folder as it is now, not as the last poll saw it
        refused = delete_refusal(info, in_app=run_id in self.in_app)
        if refused is None and info is not None and info.state == "queued" and Run(info.path).is_locked():
            refused = Refusal("active", "is starting in another process; stop it before deleting")
        if info is None or refused is not None:
            self.notify(f"{run_id} {refused.text if refused else 'is gone'}", severity="warning")
            self.poll_runs()
            return
        from .confirm import ConfirmScreen

        def done(answer: str | None) -> None:
            if answer == "delete":      # in a thread: a folder of big checkpoints takes a while to remove
                self.run_worker(partial(self._delete, run_id, after), thread=True, exit_on_error=False,
                                group="delete", description=f"deleting {run_id}")

        self.push_screen(ConfirmScreen(f"Delete {run_id}?", f"This removes the folder {self.store.root / run_id} "
                                       "with its checkpoint and logs. It cannot be undone.",
                                       [("delete", "Delete", "error"), ("cancel", "Keep", "primary")],
                                       id="confirm-delete", focus="cancel"), done)

    def _delete(self, run_id: str, after) -> None:
        try:
            self.store.delete(run_id)
        except (RunError, OSError) as exc:
            self.call_from_thread(self.notify, f"cannot delete {run_id}: "
                                  f"{error_text(exc, self.store.root, 'delete it again')}", severity="error")
            return
        self.call_from_thread(self._deleted, run_id, after)

    def _deleted(self, run_id: str, after) -> None:
        self.marked.discard(run_id)
        self.notify(f"deleted {run_id}", timeout=3)
        self.poll_runs()
        if after is not None:
            after()

    def live_info(self, run_id: str) -> RunInfo | None:
        """The run as its folder says now (a dialog's answer can come after the run ended); None when gone."""
        try:
            return self.store.get(run_id).info()
        except RunError:
            return None
