"""The scheduler: serves the queue of one runs folder on a set of device slots (``tui_app.py scheduler``).

One scheduler per runs folder: it holds ``<runs>/scheduler.lock`` while it serves (a second one sees the lock and
leaves), writes what it does to ``<runs>/scheduler.log`` and its slots to ``<runs>/scheduler.json``. Each slot is a
device and a number (``cuda:0#0``, ``cuda:0#1`` with ``--per-device 2``). When a slot is free it takes the next
queued run that fits the slot (core/serve/queue.py, core.serve.gpus.fits), claims it with the run's lock, and hands the
lock to a trainer process that the launcher starts (core/serve/launch.py), so no other process can take the run in
between. The run folder stays the bus: the scheduler learns that a run ended from its process and its status.

Crash policy: a trainer process that dies (kill -9, a node hiccup) leaves a ``crashed`` run; it is resumed from
its checkpoint up to ``retries`` times, each retry written to the run's events.log (the trainer cuts epochs.jsonl
back to the checkpoint, so it keeps one line per epoch). A run that ends ``out-of-memory`` is retried with twice
the micro-batches it had (and ``on_oom = split``, so the trainer splits further itself where it can), again after
each out-of-memory until the micro-batches would outnumber the batch's images. ``failed``, ``diverged`` and
``stopped`` runs stay as they are. These decisions are one pure function, ``next_action``. Trainer processes run
in their own sessions: they keep training when the scheduler stops, and a scheduler started later finds them
(their slots count as busy) and retries them if they crash.

The slots are core/serve/slots.py; the scheduler seen from outside (is one serving, start one, stop it) is
core/serve/scheduler_control.py.
"""
from __future__ import annotations

import os
import socket
import threading
import time

from core.serve import on_end as end_hook
from core.serve import queue as Q
from core.serve.decisions import FINAL, RETRYABLE, next_action
from core.serve.launch import LocalLauncher
from core.serve.scheduler_control import LOG_FILE, STATE_FILE, SchedulerRunning, describe, lock_of
from core.serve.slots import Busy, Slot, misfit, sharing, slot_threads
from core.store.lock import FileLock, LockHeldError
from core.store.runs import ACTIVE, Run, RunError, RunStore, iso, live_state, now
from core.util.files import append_bytes, atomic_write_bytes, atomic_write_json

DEFAULT_RETRIES = 2
DEFAULT_IDLE_EXIT_S = 300.0      # leave after the queue has been empty this long (unless --stay)
POLL_S = 0.2                     # how often slots and the queue are looked at


class Scheduler:
    """Serves ``store`` on ``slots`` until stopped, or until the queue has been empty for ``idle_exit_s``."""

    def __init__(self, store: RunStore, slots: list[Slot], launcher=None, retries: int = DEFAULT_RETRIES,
                 idle_exit_s: float = DEFAULT_IDLE_EXIT_S, stay: bool = False, echo=None, on_end: str | None = None):
        self.store, self.slots, self.retries = store, slots, retries
        self.on_end = on_end            # --on-end; None: the user's on_end setting, read as each run ends
        self.launcher = launcher or LocalLauncher(store.root, *slot_threads(slots, os.cpu_count() or 1),
                                                  sharing=sharing(slots))
        self.idle_exit_s, self.stay, self.echo = idle_exit_s, stay, echo
        self.lock = lock_of(store.root)
        self.busy: dict[Slot, Busy] = {}
        self.retry: list[tuple[Run, str]] = []     # (run, why) to resume before any queued run
        self.exiting: list = []                     # handles of trainers that ended but whose process still exits
        self.stop_event = threading.Event()
        self._warned: set[str] = set()
        self._state_written = 0.0
        self._last_error = ""

    # -- log ---------------------------------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"{iso()}  {message}"
        try:   # never through a link (core/util/files.py); a log that cannot be written must not stop the scheduler
            append_bytes(self.store.root / LOG_FILE, (line + "\n").encode())
        except OSError:
            pass
        if self.echo is not None:
            self.echo(line)

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def serve(self) -> None:
        """Take the folder's scheduler lock (SchedulerRunning if taken) and serve until stopped or idle."""
        self.store.root.mkdir(parents=True, exist_ok=True)
        try:
            self.lock.acquire()
        except LockHeldError:
            raise SchedulerRunning(describe(self.store.root)) from None
        try:
            self.log(f"serving {self.store.root.resolve()} on {', '.join(s.name for s in self.slots)} "
                     f"(pid {os.getpid()}, retries {self.retries}, "
                     f"{'stays' if self.stay else f'leaves after {self.idle_exit_s:g} s without work'})")
            self._adopt()
            idle_since = time.monotonic()
            while not self.stop_event.is_set():
                if not self._still_ours():
                    self.log("the runs folder or its scheduler.lock was deleted or replaced: leaving")
                    return
                if self._tick_safely():
                    idle_since = time.monotonic()
                elif not self.stay and time.monotonic() - idle_since >= self.idle_exit_s:
                    self.log(f"nothing to do for {self.idle_exit_s:g} s: leaving")
                    break
                self.write_state()
                self.stop_event.wait(POLL_S)
            else:
                still = [b.run.id for b in self.busy.values()]
                self.log("stopped" + (f"; {', '.join(still)} keep training in their own processes" if still else ""))
        finally:
            try:
                if self._still_ours():      # else the state file is another scheduler's
                    (self.store.root / STATE_FILE).unlink()
            except OSError:
                pass
            self.lock.release()

    def _tick_safely(self) -> bool:
        """A tick; an unexpected error (a run folder deleted under it, a full disk) is logged, never fatal."""
        try:
            return self.tick()
        except Exception as exc:  # noqa: BLE001 - the scheduler serves the other runs on
            message = f"error: {type(exc).__name__}: {exc} (continuing)"
            if message != self._last_error:     # once, not five times a second
                self.log(message)
            self._last_error = message
            return True

    def _adopt(self) -> None:
        """Runs a previous scheduler placed: still training (their slot is busy) or crashed since (retry them)."""
        by_name = {s.name: s for s in self.slots}
        adopt = getattr(self.launcher, "adopt", None)     # a launcher whose jobs outlive it (Slurm) finds them
        for run, entry in Q.entries(self.store):
            if entry.get("settled") or not entry.get("slot"):
                continue
            slot = by_name.get(entry["slot"])
            handle = adopt(run) if adopt is not None else None
            if handle is not None and slot is not None and slot not in self.busy:
                self.busy[slot] = Busy(run, handle)
                self.log(f"{run.id} is still a job ({entry.get('pid')}) on {slot.name}: its slot stays busy")
            elif run.is_locked():          # its trainer process lives (training, paused, or still starting)
                if slot is not None and slot not in self.busy:
                    self.busy[slot] = Busy(run, None)
                    self.log(f"{run.id} is training on {slot.name} (pid {entry.get('pid')}): its slot stays busy")
                else:
                    self.log(f"{run.id} is training on {entry['slot']}, which this scheduler does not serve")
            elif not entry.get("pid") and live_state(run) == "queued":
                self._take_back(run)       # claimed, but the scheduler ended before its trainer started
            else:
                self._ended(run, None)

    def _take_back(self, run: Run) -> None:
        """Put a run that a scheduler claimed but never started (killed inside its claim window) back at the head of
        the queue, where it was."""
        try:
            with Q.holding(run):
                entry = Q.read_entry(run)
                if entry is None or entry.get("pid") or entry.get("position") is not None:
                    return
                head = min((float(q.entry.get("position") or 0) for q in Q.queued(self.store)), default=1.0)
                Q.write_entry(run, {**entry, "position": int(head) - 1, "slot": None, "device": None})
        except RunError:           # locked: a process starts or trains it after all
            return
        run.log("scheduler: the scheduler that claimed this run ended before it started a trainer; back in the "
                "queue, first")
        self.log(f"{run.id} was claimed by a scheduler that ended before it started a trainer: back in the queue, "
                 f"first")

    # -- one look at everything --------------------------------------------------------------------------------------
    def tick(self) -> bool:
        """Free the slots whose run ended, fill free slots. True while there is work (busy slots or queued runs)."""
        self.exiting = [h for h in self.exiting if h.poll() is None]     # reap trainer processes that ended
        for slot, busy in list(self.busy.items()):
            code = None
            if busy.handle is None:                # started by an earlier scheduler: its lock says it lives
                if busy.run.is_locked():
                    continue
            elif (code := busy.handle.poll()) is None:
                # a Slurm job keeps its slot until it ends: it may checkpoint, be requeued and resume the run
                if getattr(busy.handle, "whole_job", False) or not self._left(busy.run):
                    continue
                self.exiting.append(busy.handle)
            elif busy.run.is_locked() and live_state(busy.run) in ACTIVE and not Q.by_hand(busy.run):
                # its launcher died (kill -9 of torchrun) but the trainer processes it started train on
                self.busy[slot] = Busy(busy.run, None, busy.since)
                self.log(f"{busy.run.id}: its launcher process (pid {busy.handle.pid}) ended with exit code {code}, "
                         f"but the run still trains: {slot.name} stays busy until it ends")
                continue
            del self.busy[slot]
            self._ended(busy.run, code, slot, time.monotonic() - busy.since,
                        gone=getattr(busy.handle, "whole_job", False))
        return self._fill() or bool(self.busy)

    @staticmethod
    def _left(run: Run) -> bool:
        """The trainer wrote its final state and let go of the run (its process may still be exiting): the slot
        is free already, a fraction of a second before the process is gone."""
        return live_state(run) in FINAL and not run.is_locked()

    def _still_ours(self) -> bool:
        """False once the runs folder or our lock file was deleted or replaced: another scheduler may serve it."""
        return self.lock.still_ours()

    def _fill(self) -> bool:
        """Start runs in free slots: retries first, then the queue in order. True when a run waits for a slot."""
        free = [s for s in self.slots if s not in self.busy]
        pending, self.retry = self.retry, []
        for run, why in pending:
            slot = self._slot_for(run, free)
            if slot is None:
                self.retry.append((run, why))      # waits for a slot of its device
            elif self._claim(run, slot, why):
                free.remove(slot)
        if not free:
            return True
        waiting = bool(self.retry)
        for q in Q.queued(self.store):
            slot = self._slot_for(q.run, free) if free else None
            if slot is not None and self._claim(q.run, slot, None):
                free.remove(slot)
            elif slot is None:
                waiting = waiting or self._could_ever_fit(q.run)
        return waiting

    def _slot_for(self, run: Run, free: list[Slot]) -> Slot | None:
        try:
            cfg = run.read_config()
        except (OSError, ValueError):
            cfg = None    # the trainer reports the unreadable config as a failure
        return next((s for s in free if cfg is None or not misfit(cfg, s)), None)

    def _could_ever_fit(self, run: Run) -> bool:
        try:
            cfg = run.read_config()
        except (OSError, ValueError):
            return True
        why = [misfit(cfg, s) for s in self.slots]
        if not all(why):
            return True
        if run.id not in self._warned:
            self._warned.add(run.id)
            self.log(f"{run.id} {why[-1]}; it waits")
        return False

    # -- claim and start ---------------------------------------------------------------------------------------------
    def _claim(self, run: Run, slot: Slot, why: str | None) -> bool:
        """Take the run's lock, check it still wants this, record the placement and start its trainer process."""
        lock = FileLock(run.lock_path)
        try:
            lock.acquire()
        except (LockHeldError, FileNotFoundError):
            return False       # another process trains or starts it, or its folder was just deleted
        try:
            entry = Q.read_entry(run)
            state = live_state(run)
            if state in ACTIVE:
                state = "crashed"   # it says running, but we hold its lock: the process that wrote that is gone
            if entry is None or (why is None and (entry.get("position") is None or state != "queued")) \
                    or (why is not None and (entry.get("settled") or state not in RETRYABLE + ("out-of-memory",))):
                return False   # removed, moved out or resumed by hand meanwhile
            launches = int(entry.get("launches") or 0) + 1
            entry.update(position=None, launches=launches, slot=slot.name, device=slot.device, pid=None,
                         started_at=now(), settled=False)
            if why is not None:
                entry["retries"] = int(entry.get("retries") or 0) + (0 if why == "out-of-memory" else 1)
                if why == "out-of-memory":
                    entry["oom_retried"] = True
            Q.write_entry(run, entry)
            try:
                handle = self.launcher.start(run, slot, lock.fd)
            except Exception as exc:  # noqa: BLE001 - e.g. a fork that fails: the run stays readable
                run.update_status(state="failed", error=f"the scheduler could not start a trainer: {exc}")
                Q.write_entry(run, {**entry, "settled": True})
                self.log(f"{run.id}: cannot start a trainer process ({exc})")
                return False
            Q.write_entry(run, {**entry, "pid": handle.pid})
            lock.hand_over()   # the trainer process holds the run's lock from here on
        finally:
            lock.release()     # a no-op once handed over
        self.busy[slot] = Busy(run, handle)
        what = "started" if why is None else f"resumed ({why})"
        self.log(f"{what} {run.id} on {slot.name} (pid {handle.pid}, launch {launches})")
        return True

    @staticmethod
    def _split_on_oom(run: Run, micro_batches: int) -> None:
        """The retry trains with ``micro_batches`` slices (the trainer takes the config's count where it is more
        than the checkpoint's) and splits further itself where it can."""
        cfg = run.read_config()
        if (cfg.on_oom, cfg.micro_batches) != ("split", micro_batches):
            atomic_write_bytes(run.config_path, cfg.with_overrides(on_oom="split", micro_batches=micro_batches)
                               .to_json().encode())

    # -- a run left its slot -----------------------------------------------------------------------------------------
    def _ended(self, run: Run, code: int | None, slot: Slot | None = None, seconds: float | None = None,
               gone: bool = False) -> None:
        """Decide what happens after a trainer process ended: nothing, a resume (crash), or the OOM retry."""
        if not run.path.is_dir():
            self.log(f"{run.id}: its folder is gone")
            return
        state, entry = live_state(run), Q.read_entry(run) or {}
        if Q.by_hand(run, entry):          # resumed by hand after its trainer ended: not ours any more
            self.log(f"{run.id} was resumed by hand: it left the queue")
            return
        took = f" after {seconds:.0f} s" if seconds is not None else ""
        where = f" on {slot.name}" if slot else ""
        used = int(entry.get("retries") or 0)
        action = next_action(state, used, self.retries, *self._slices(run), gone=gone)
        if gone and state in ACTIVE:
            state = "crashed"
            run.update_status(state=state, error="its Slurm job ended while it trained (time limit or node failure)")
        if action.kind == "release":       # trained by another process now (a resume by hand): not ours any more
            Q.write_entry(run, {**entry, "settled": True})
            return
        if action.kind in ("retry", "give-up"):
            detail = f"the trainer process (pid {entry.get('pid')}) died" + (f" with exit code {code}" if code else "")
            if state == "queued":
                detail += " before it started training (see process.log)"
            if action.kind == "retry":
                again = ("resuming from its checkpoint" if run.checkpoint_path.exists()
                         else "starting it again (no checkpoint yet)")
                run.log(f"scheduler: {detail}; {again} (retry {used + 1} of {self.retries})")
                self.log(f"{run.id} {state}{where}{took}: {detail}; retry {used + 1} of {self.retries}")
                self.retry.append((run, "crash"))
                return
            run.log(f"scheduler: {detail}; no retries left ({self.retries} used): resume it by hand")
            self.log(f"{run.id} {state}{where}{took}: no retries left")
        elif action.kind == "oom":
            self._split_on_oom(run, action.micro_batches)
            run.log(f"scheduler: out of memory; retrying with {action.micro_batches} micro-batches (on_oom = split)")
            self.log(f"{run.id} out-of-memory{where}{took}: retrying with {action.micro_batches} micro-batches")
            self.retry.append((run, "out-of-memory"))
            return
        else:
            self.log(f"{run.id} {state}{where}{took}")
        Q.write_entry(run, {**entry, "settled": True})
        end_hook.start(end_hook.configured(self.on_end), run)     # the user's command (core/serve/on_end.py), detached

    @staticmethod
    def _slices(run: Run) -> tuple[int, int]:
        """(micro-batches the run last trained with, its batch size), for an out-of-memory decision."""
        try:
            cfg = run.read_config()
        except (OSError, ValueError):
            return 1, 0
        try:
            had = int(run.read_status().get("micro_batches") or 1)
        except (OSError, ValueError, TypeError):
            had = 1
        return max(had, cfg.micro_batches), cfg.batch_size

    # -- what others read --------------------------------------------------------------------------------------------
    def write_state(self, every_s: float = 2.0) -> None:
        if time.monotonic() - self._state_written < every_s and not self._changed():
            return
        self._state_written = time.monotonic()
        self._last_slots = self._slots_view()
        atomic_write_json(self.store.root / STATE_FILE, {
            "pid": os.getpid(), "host": socket.gethostname(), "updated_at": now(), "retries": self.retries,
            "devices": sorted({s.device for s in self.slots}), "slots": self._last_slots, "stay": self.stay,
            "idle_exit_s": self.idle_exit_s})

    def _slots_view(self) -> list[dict]:
        return [{"slot": s.name, "device": s.device, "run": self.busy[s].run.id if s in self.busy else None}
                for s in self.slots]

    def _changed(self) -> bool:
        return getattr(self, "_last_slots", None) != self._slots_view()
