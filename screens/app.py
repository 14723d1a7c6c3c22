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

import asyncio
import gc
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

from core.results.groups import run_group
from core.spec.config import RunConfig
from core.store.runs import ACTIVE, RunStore
from core.train.events import Progress
from core.util.files import error_text

from .action_thread import ActionDone, ActionThread
from .in_app_queue import InAppQueue
from .messages import TrainerEventMessage, TrainingEnded
from .notify import ALERTS, tell_ended
from .poller import Polled, Poller
from .run_actions import RunActions
from .run_files import FollowedFiles, RunFiles
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
         "screens.queue_devices", "screens.quitting", "core.serve.scheduler_control")

PREBUILD_AFTER_S = 1.0       # the new-run form is built after this long without a key
FIRST_READ = 60              # run folders read before the table is first drawn (newest first: a tall screenful)
READ_BATCH = 500             # then this many at a time in a thread until every folder is read


def _freeze() -> None:
    gc.collect()
    gc.freeze()


def _import_torch() -> None:
    import core.train.trainer  # noqa: F401

    _freeze()


class ResLabApp(RunActions, TellWorkerErrors, App[str | None]):
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
        self.followed = FollowedFiles(self.store.root)   # ... and the files of the runs the screens show
        self.actions = ActionThread(self)        # what the user asks done to runs, off the event loop as well
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
        self._torch_asked = False                # torch's import begun (``preload_torch``)
        self._last_key = 0.0                     # monotonic time of the last key (the form is built in a pause)
        self.first_drawn = False                 # the runs table has reached the terminal once
        self.runs_changed_signal: Signal[set[str]] = Signal(self, "runs-changed")
        """Published after every poll of the store with the ids of the runs that changed (maybe none)."""

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    async def on_mount(self) -> None:
        self.sub_title = str(self.store.root)
        await asyncio.to_thread(self._first_read)    # (in a thread, as every read of the folder)
        self.push_screen(RunsScreen())
        self.poller.start()                           # then every poll_interval, in a thread
        self.actions.start()
        self.set_timer(PREBUILD_AFTER_S, partial(self.prebuild_form, when_quiet=True))

    def on_ready(self) -> None:
        self.screen.call_after_refresh(self._after_first_draw)

    def _after_first_draw(self) -> None:
        """The first frame (the runs table) is on the terminal: now the rest (the other folders, the other screens'
        modules), whose imports in a thread take the GIL from the event loop (torch's took seconds from the table's
        first draw when it began before it; it now waits for the form, ``preload_torch``)."""
        self.first_drawn = True
        unchecked = self.watcher.unverified
        if self.watcher.pending or unchecked:   # newest first, as listed
            self._read_the_rest(list(self.watcher.pending), [r for r in self.watcher.listed() if r in unchecked])
        else:
            self._preload_engine()

    def _first_read(self) -> None:
        """(a thread, before the first draw: nothing else reads the watcher yet) Where the folder's index has rows
        (core/store/index.py), every run as its row says: a lab's whole table is in the first frame (10,000 runs:
        about half a second later than 60 rows took, and two seconds sooner whole), each folder checked after it,
        newest first (``_read_the_rest``); else the newest FIRST_READ folders, the others after the first frame."""
        cached = self.watcher.read_cached(self.watcher.list_now())
        if cached:
            self.watcher.apply(cached, verified=False)
        else:
            self.watcher.poll(budget=FIRST_READ)
        for info in self.watcher.infos.values():     # what the table's title works out from every run: here
            run_group(info)
        gc.freeze()     # the runs read live as long as their rows: the collector's passes no longer walk them all

    @work(thread=True, exit_on_error=False, group="read-runs")
    def _read_the_rest(self, todo: list[str], unchecked: list[str]) -> None:
        """The folders the first read left, off the event loop: first as the index's rows say them (the whole
        table at once, if the first read could not show it), then each folder checked and read where it changed
        (newest first, a batch at a time), every batch reaching the table as it is read."""
        cached = self.watcher.read_cached(todo) if todo else []
        if cached and not self._quitting:
            self.call_from_thread(self._took_runs, cached, False)
        if not self._quitting:      # the other screens' modules, once the table is whole and drawn
            self.call_from_thread(self.call_after_refresh, self._preload_engine)
        todo = [*unchecked, *todo]
        read, since, wait = [], time.monotonic(), 1.0
        for start in range(0, len(todo), READ_BATCH):
            if self._quitting:
                return
            read += self.watcher.read(todo[start:start + READ_BATCH])
            if start + READ_BATCH >= len(todo) or time.monotonic() - since >= wait:
                self.call_from_thread(self._took_runs, read)
                # the table grows after 1 s, then 2, 4, 8: each growth redraws every row (10,000 runs read with
                # no index grew it 100 times, 10,000 rows each time, and took the event loop 2 minutes)
                read, since, wait = [], time.monotonic(), min(8.0, wait * 2)

    def _took_runs(self, read, verified: bool = True) -> None:
        self.runs_changed_signal.publish(self.watcher.apply(read, verified))

    @work(thread=True, exit_on_error=False, group="preload")
    def _preload_engine(self) -> None:
        """Import the other screens now, while the user reads the table; then the objects alive by now leave the
        garbage collector's sight (``gc.freeze``): they live as long as the app, and each full collection would walk
        them all, a pause in every screen change. torch waits for ``preload_torch``."""
        import importlib

        from core.store.query import prepare

        for name in LATER:
            importlib.import_module(name)
        try:
            infos = list(self.watcher.infos.values())
        except RuntimeError:                        # (the table changed as it was copied: the keys make them)
            infos = []
        prepare(infos)                              # the filter's words of every run: the first / key costs no more
        _freeze()

    def preload_torch(self) -> None:
        """Import torch and the trainer in a thread, once: when the new-run form opens (while it is filled in) or
        a run is to train here. An app that only watches never loads them (~490 MB resident, most of its memory;
        the import holds the GIL for a second or two, which the form's filling-in hides)."""
        if not self._torch_asked:
            self._torch_asked = True
            self.run_worker(_import_torch, thread=True, exit_on_error=False, group="preload",
                            description="importing torch")

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._last_key = time.monotonic()
            if self.screen_stack and hold(self.screen, event):
                return      # a key typed while the screen is still being built: it gets it in order once ready
        await super().on_event(event)

    def on_unmount(self) -> None:
        # Whatever ends the app, in-app runs stop with a checkpoint instead of being cut off; the poller ends.
        self.poller.stop()
        self.actions.stop()
        for event in self.stop_events.values():
            event.set()

    def poll_runs(self, *only: str | None, then=None) -> None:
        """Have the store (or these runs) read again, off the event loop (screens/poller.py); ``took_poll`` then
        tells the screens what changed (``runs_changed_signal``), and ``then()`` runs: an action goes on from the
        run's new state."""
        self.poller.ask(*only, then=then)

    def on_polled(self, message: Polled) -> None:
        self.took_poll(message.scans, message.queue_order, message.files)
        message.taken.set()                           # the poller waits for this before its next scan
        for then in message.then:
            then()

    def on_action_done(self, message: ActionDone) -> None:
        message.then(message.result)

    # -- the files of the runs the screens show (screens/run_files.py) --------------------------------------------
    def follow_files(self, run_id: str) -> None:
        """A screen shows this run's files: the poller reads them (now, then with each scan) until unfollowed."""
        self.followed.follow(run_id)
        self.poller.ask(run_id)

    def unfollow_files(self, run_id: str) -> None:
        self.followed.unfollow(run_id)

    def run_files(self, run_id: str) -> RunFiles:
        """The run's files as last read (``RunFiles()``, not ``read``, before the first reading)."""
        return self.followed.get(run_id)

    def took_poll(self, scans, queue_order: list[str] | None, files: dict | None = None) -> None:
        """The poller's scans taken in (no I/O here)."""
        changed: set[str] = set(files or ())
        self.followed.take(files or {})
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
        self.poll_runs(message.run_id)

    def on_training_ended(self, message: TrainingEnded) -> None:
        self.live.pop(message.run_id, None)
        self.poll_runs(message.run_id)
        tell_ended(self, message.run_id, message.state, message.message, trained_here=True)

    # -- in-app training ---------------------------------------------------------------------------------------------
    def start_training(self, run_ids: list[str]) -> None:
        """Queue runs in this app. One thread worker trains the queue, one run after another (a grid, a resume
        while another run trains): runs in one app never compete for the same device."""
        self._torch_asked = True                        # (the trainer's thread imports it, if nothing has yet)
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
    def start_scheduler(self):
        """(off the event loop: the actions thread, or the quit's) Make sure a scheduler serves this runs folder (a
        detached one on every GPU, else the CPU): the Popen of the one started, None when one already served, or
        the OSError that kept one from starting. ``scheduler_started`` tells it on the event loop."""
        try:
            from core.serve.scheduler_control import start_detached

            return start_detached(self.store.root)
        except OSError as exc:
            return exc

    def scheduler_started(self, started) -> None:
        if isinstance(started, OSError):
            self.notify(f"cannot start a scheduler: {error_text(started, self.store.root)}; or start one with "
                        f"`tui_app.py scheduler`", severity="error")
        elif started is not None:
            self._scheduler = started
            self.notify("scheduler started: queued runs train on every device slot and keep going after you quit "
                        "(g shows the queue)", timeout=6)

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
        self.preload_torch()
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

    # -- quitting (screens/quitting.py) --------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        from .quitting import ask_to_quit, background_note

        if self._quitting:
            return
        if not self.in_app:
            self._quitting = True
            note = await asyncio.to_thread(background_note, self)     # (it reads the scheduler's state file)
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
