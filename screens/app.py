"""The ResLab Textual app: owns the run store watcher, the in-app training workers and the stop/pause events.

Screens read runs through ``app.watcher`` (read about once a second in a thread: screens/poller.py), so runs trained
by this app, by the CLI or by another process look and update the same way; after each poll the App publishes the
changed run ids on ``runs_changed_signal``, to which screens subscribe. In-app training runs in thread workers
owned by the App (leaving a screen never cancels training); the trainer's events reach the UI as messages,
throttled, and only trigger an immediate re-read of that run's folder. Nothing here forces a device sync.
Screens never import each other: they ask the App to open one (``open_run``, ``open_new_run``, ``open_compare``,
``open_queue``). Runs launched into the queue are the scheduler's (core/serve/scheduler.py): the App only queues them
and makes sure a scheduler serves the folder, so they keep training after it quits.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.signal import Signal

from core.serve import queue as Q
from core.serve.slurm import SlurmUnavailable, cancel_pending
from core.spec.config import RunConfig
from core.store.rules import (
    continue_refusal,
    offer_resume_refusal,
    pause_refusal,
    stop_refusal,
)
from core.store.runs import ACTIVE, RunError, RunInfo, RunStore
from core.train.events import Progress
from core.util.files import error_text
from core.util.formatting import some_ids

from .in_app_queue import InAppQueue
from .messages import TrainerEventMessage, TrainingEnded
from .notify import ALERTS, tell_ended
from .poller import Polled, Poller
from .runs import RunsScreen
from .training import train_one
from .watch import RunWatcher
from .widgets.keys import palette_commands
from .widgets.typeahead import hold
from .widgets.worker_errors import TellWorkerErrors

if TYPE_CHECKING:
    from .new_run import NewRunScreen

# The screens not shown first are imported when first opened, or before that in a thread once the runs table is drawn
# (``_preload_engine``): importing them all before the first draw cost ~0.2 s of the start on a busy 2-core machine.
LATER = ("screens.compare", "screens.confirm", "screens.detail", "screens.help", "screens.monitor", "screens.new_run",
         "screens.queue_devices", "screens.quitting", "core.serve.scheduler")

PREBUILD_AFTER_S = 1.0       # the new-run form is built after this long without a key
FIRST_READ = 60              # run folders read before the table is first drawn (newest first: a tall screenful)
READ_BATCH = 100             # then this many at a time in a thread until every folder is read


class ResLabApp(TellWorkerErrors, App[str | None]):
    """ResLab: launch, watch, stop/resume and compare residual-network runs."""

    # Every screen's stylesheet is read once at start: Textual reparses all CSS and restyles the whole app the
    # first time it meets a new screen's CSS_PATH, which made each screen's first opening take over a second.
    CSS_PATH = ["app.tcss", "runs.tcss", "new_run.tcss", "monitor.tcss", "detail.tcss", "compare.tcss",
                "confirm.tcss", "queue_devices.tcss", "help.tcss"]
    TITLE = "ResLab"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
                Binding("question_mark", "help", "Keys", key_display="?", tooltip="Keys of this screen"),
                Binding("f1", "help", "Keys of this screen", show=False, priority=True)]

    def __init__(self, runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
                 poll_interval: float = 1.0):
        super().__init__()
        self.store = RunStore(runs_dir)
        self.data_dir = "" if data_dir is None else str(data_dir)
        self.watcher = RunWatcher(self.store)
        self.poll_interval = poll_interval
        self.poller = Poller(self, poll_interval)   # the folder read in a thread (screens/poller.py)
        self.queue = InAppQueue()                # this app's own queue (screens/in_app_queue.py)
        self.in_app = self.queue.runs            # [training now, next, ...]
        self.stop_events, self.pause_events = self.queue.stop_events, self.queue.pause_events
        self.ended_here: set[str] = set()        # runs whose training in this app has ended
        self.live: dict[str, Progress] = {}      # latest Progress event per in-app run
        self.queue_order: list[str] = []         # the runs folder's queue (core/serve/queue.py), as of the last poll
        self._scheduler = None                   # Popen of a scheduler this app started (reaped when it ends)
        self.marked: set[str] = set()
        self.grids: dict[str, list[str]] = {}    # run id -> the ids launched with it (the monitor follows the grid)
        self._quitting = False
        self._last_key = 0.0                     # monotonic time of the last key (the form is built in a pause)
        self.first_drawn = False                 # the runs table has reached the terminal once
        self.runs_changed_signal: Signal[set[str]] = Signal(self, "runs-changed")
        """Published after every poll of the store with the ids of the runs that changed (maybe none)."""

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.sub_title = str(self.store.root)
        self.watcher.poll(budget=FIRST_READ)          # the newest runs now; a lab's thousands after the first draw
        self.push_screen(RunsScreen())
        self.poller.start()                           # then every poll_interval, in a thread
        self.set_timer(PREBUILD_AFTER_S, partial(self.prebuild_form, when_quiet=True))

    def on_ready(self) -> None:
        self.screen.call_after_refresh(self._after_first_draw)

    def _after_first_draw(self) -> None:
        """The first frame (the runs table) is on the terminal: now the rest (the other folders, the other screens'
        modules, torch), whose imports in a thread take the GIL from the event loop (torch's took seconds from the
        table's first draw when they began before it)."""
        self.first_drawn = True
        if self.watcher.pending:
            self._read_the_rest()
        self._preload_engine()

    @work(thread=True, exit_on_error=False, group="read-runs")
    def _read_the_rest(self) -> None:
        """Read the folders the first poll left (newest first, a batch at a time) off the event loop; each batch
        reaches the table as it is read."""
        todo = list(self.watcher.pending)
        read, since = [], time.monotonic()
        for start in range(0, len(todo), READ_BATCH):
            if self._quitting:
                return
            read += self.watcher.read(todo[start:start + READ_BATCH])
            if start + READ_BATCH >= len(todo) or time.monotonic() - since >= 1.0:   # the table grows once a second
                self.call_from_thread(self._took_runs, read)
                read, since = [], time.monotonic()

    def _took_runs(self, read) -> None:
        self.runs_changed_signal.publish(self.watcher.apply(read))

    @work(thread=True, exit_on_error=False, group="preload")
    def _preload_engine(self) -> None:
        """Import torch and the trainer now, while the user reads the table (the import holds the GIL for seconds).
        Then the objects alive by now (torch's ~10^6 among them) leave the garbage collector's sight (``gc.freeze``):
        they live as long as the app, and each full collection would walk them all, a pause in every screen change."""
        import gc
        import importlib

        for name in LATER:
            importlib.import_module(name)
        import core.train.trainer  # noqa: F401

        gc.collect()
        gc.freeze()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._last_key = time.monotonic()
            if self.screen_stack and hold(self.screen, event):
                return      # a key typed while the screen is still being built: it gets it in order once ready
        await super().on_event(event)

    def on_unmount(self) -> None:
        # Whatever ends the app, in-app runs stop with a checkpoint instead of being cut off; the poller ends.
        self.poller.stop()
        for event in self.stop_events.values():
            event.set()

    def poll_runs(self, only: str | None = None, now: bool = False) -> None:
        """Have the store (or one run) read again, off the event loop (screens/poller.py); ``took_poll`` then tells
        the screens what changed (``runs_changed_signal``). ``now``: one run's folder, here, for an action on it."""
        self.took_poll([self.watcher.scan(only)], None) if now else self.poller.ask(only)

    def on_polled(self, message: Polled) -> None:
        self.took_poll(message.scans, message.queue_order)
        message.taken.set()                           # the poller waits for this before its next scan

    def took_poll(self, scans, queue_order: list[str] | None) -> None:
        """The poller's scans taken in (no I/O here)."""
        changed: set[str] = set()
        for scan in scans:
            changed |= self.watcher.apply_scan(scan)
        if queue_order is not None:
            self.queue_order = queue_order
            if self._scheduler is not None and self._scheduler.poll() is not None:
                self._scheduler = None
        for run_id in self.watcher.ended:    # ended in another process (this app's runs: on_training_ended)
            info = self.watcher.infos.get(run_id)
            if info is not None and info.state in ALERTS and not (run_id in self.in_app or run_id in self.ended_here):
                tell_ended(self, run_id, info.state)
        self.watcher.ended.clear()
        self.runs_changed_signal.publish(changed)

    # -- trainer events ----------------------------------------------------------------------------------------------
    def on_trainer_event_message(self, message: TrainerEventMessage) -> None:
        if isinstance(message.event, Progress):
            self.live[message.run_id] = message.event
        self.poll_runs(only=message.run_id)

    def on_training_ended(self, message: TrainingEnded) -> None:
        self.live.pop(message.run_id, None)
        self.poll_runs(only=message.run_id)
        tell_ended(self, message.run_id, message.state, message.message, trained_here=True)

    # -- in-app training ---------------------------------------------------------------------------------------------
    def start_training(self, run_ids: list[str]) -> None:
        """Queue runs in this app. One thread worker trains the queue, one run after another (a grid, a resume
        while another run trains): runs in one app never compete for the same device."""
        self.ended_here.difference_update(run_ids)     # its next end is told as that of a run trained here
        if self.queue.add(run_ids):
            self._train_queue()

    @work(thread=True, exclusive=False, exit_on_error=False, group="training", description="training")
    def _train_queue(self) -> None:
        while (run_id := self.queue.next_run()) is not None:
            try:
                if self.queue.stopped_before_start(run_id):
                    continue  # stopped while still queued: it stays queued, resumable with r
                state, message = train_one(self.store, run_id, self.stop_events[run_id], self.pause_events[run_id],
                                           self.post_message)
                self.ended_here.add(run_id)     # its end has a toast of its own (on_training_ended)
                self.post_message(TrainingEnded(run_id, state, message))
            finally:
                self.queue.forget(run_id)

    def queue_position(self, run_id: str) -> int | None:
        """0 for the run this app trains now, 1 for the next one ...; None when not queued here."""
        return self.queue.position(run_id)

    def is_in_app(self, run_id: str) -> bool:
        return run_id in self.queue

    # -- the queue (core/serve/queue.py) and its scheduler (core/serve/scheduler.py) -----------------------------------
    def serve_queue(self):
        """Make sure a scheduler serves this runs folder (a detached one on every GPU, else the CPU); returns the
        Popen of the one it started (None when one already served, or none could start)."""
        try:
            from core.serve.scheduler import start_detached

            proc = start_detached(self.store.root)
        except OSError as exc:
            self.notify(f"cannot start a scheduler: {error_text(exc, self.store.root)}; or start one with "
                        f"`tui_app.py scheduler`", severity="error")
            return None
        if proc is not None:
            self._scheduler = proc
            self.notify("scheduler started: queued runs train on every device slot and keep going after you quit "
                        "(g shows the queue)", timeout=6)
        return proc

    def scheduler_position(self, run_id: str) -> int | None:
        """1 for the queued run that starts next, ...; None when it is not in the folder's queue."""
        return self.queue_order.index(run_id) + 1 if run_id in self.queue_order else None

    # -- navigation: screens ask the App to open another screen, they never import each other ------------------------
    def open_run(self, run_id: str, view: str = "auto", replace: bool = False) -> None:
        """Open a run's ``"monitor"`` or ``"detail"`` screen; ``"auto"``: the monitor while the run trains (or waits
        in this app's queue), else the detail. ``replace`` takes the current screen's place instead of covering it."""
        if view == "auto":
            info = self.watcher.infos.get(run_id)
            view = "monitor" if info is not None and (info.state in ACTIVE or self.is_in_app(run_id)) else "detail"
        from .detail import DetailScreen
        from .monitor import MonitorScreen

        kind = MonitorScreen if view == "monitor" else DetailScreen
        below = self.screen_stack[-2] if replace and len(self.screen_stack) > 1 else None
        if isinstance(below, kind) and below.run_id == run_id:
            self.pop_screen()           # the monitor this detail was opened from: back to it, not a second one
            return
        (self.switch_screen if replace else self.push_screen)(kind(run_id))

    def open_new_run(self, initial: RunConfig | None = None, replace: bool = False) -> None:
        """The new-run form, filled with ``initial`` (a clone) or as it was left. One form for the session, built
        while the app is idle after start (``prebuild_form``): opening it then only lays it out. Keys typed while
        it opens are held for it and replayed in order (``on_event``, screens/widgets/typeahead.py)."""
        form = self.prebuild_form()
        if form is None or form in self.screen_stack:
            return
        if initial is not None:
            form.load(initial)
        form.typed_ahead = []
        (self.switch_screen if replace else self.push_screen)(form)

    def prebuild_form(self, when_quiet: bool = False) -> NewRunScreen | None:
        """The session's form, composed and mounted now if it is not yet (it has ~40 fields: most of a second on a
        small machine, which would otherwise come between the key and the form); ``when_quiet``: once no key came
        for a moment (building it keeps the app busy)."""
        if when_quiet and time.monotonic() - self._last_key < PREBUILD_AFTER_S:
            self.set_timer(PREBUILD_AFTER_S, partial(self.prebuild_form, when_quiet=True))
            return None
        if not self.is_screen_installed("new-run"):
            from .new_run import NewRunScreen

            self.install_screen(NewRunScreen(data_dir=self.data_dir), "new-run")
        form = self.get_screen("new-run")
        if not form.is_running:
            self._get_screen(form)   # Textual's own start of an installed screen (what pushing it does first)
        return form  # type: ignore[return-value]

    def open_compare(self, run_ids: list[str]) -> None:
        from .compare import CompareScreen

        self.push_screen(CompareScreen(run_ids))

    def open_queue(self, replace: bool = False) -> None:
        from .queue_devices import QueueScreen

        (self.switch_screen if replace else self.push_screen)(QueueScreen())

    def open_study(self, name: str, replace: bool = False) -> None:
        from .study import StudyScreen

        (self.switch_screen if replace else self.push_screen)(StudyScreen(name))

    # -- actions used by several screens -------------------------------------------------------------------------------
    def launch(self, configs: list[RunConfig], where: str = "app", note: str | None = None) -> list[str]:
        """Create one run per config (a grid when several) and start them: in the folder's queue (``"queue"``,
        served by the scheduler) or in this app, one after another; returns the run ids. ``note`` (the form's
        milestone scaling) goes into each run's events.log, as the CLI's does. A run that cannot be created (a full
        or read-only disk) is a notification, not a crash."""
        try:
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
        from .run_actions import confirm_delete

        confirm_delete(self, run_id, after)

    def live_info(self, run_id: str) -> RunInfo | None:
        """The run as its folder says now (a dialog's answer can come after the run ended); None when gone."""
        try:
            return self.store.get(run_id).info()
        except RunError:
            return None

    # -- quitting (screens/quitting.py) --------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        from .quitting import ask_to_quit, background_note

        if self._quitting:
            return
        if not self.in_app:
            note = background_note(self)
            self.exit(note, message=note)
            return
        ask_to_quit(self)

    # -- keys: `?` lists the current screen's; the palette offers each as a command ----------------------------------
    def action_help(self) -> None:
        from .help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, screen)


def make_app(runs_dir: str | Path | None = None, data_dir: str | Path | None = None,
             poll_interval: float = 1.0) -> ResLabApp:
    """The app over a runs folder (default $RESLAB_RUNS or runs/) and a default data folder for new runs."""
    return ResLabApp(runs_dir=runs_dir, data_dir=data_dir, poll_interval=poll_interval)
