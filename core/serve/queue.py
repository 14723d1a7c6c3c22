"""The queue is the run store: a run is queued when its status says ``queued`` and its ``queue.json`` holds a
position. Nothing else holds queue state, so the order survives restarts and any process can change it.

``<run>/queue.json`` (written only under the run's lock, never by the trainer)::

    position     place among the queued runs (lower starts first; ties by added_at); null once started or removed
    added_at     when it was queued
    launches     trainer processes a scheduler started for it (the first start and every retry)
    retries      crash resumes done;  oom_retried: whether the one out-of-memory retry was used
    slot, device, pid, started_at   where the scheduler placed it last (slot "cuda:2#1": device and slot number)
    settled      the scheduler saw it end and has nothing more to do for it

A run created by ``train`` or by the app's in-app training also starts as ``queued`` but has no queue.json: it is
about to be trained by its creator, so no scheduler takes it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from core.spec.config import RunConfig
from core.store import reader
from core.store.rules import requeue_refusal
from core.store.runs import ACTIVE, Run, RunError, RunLockedError, RunStore, live_state, now
from core.util.files import atomic_write_json, write_error

QUEUE_FILE = "queue.json"


def read_entry(run: Run) -> dict | None:
    """The run's queue.json, or None for a run that never went through the queue (or a file ResLab did not write:
    read and checked by core/store/reader.py)."""
    try:
        return reader.read_queue_entry(run.path / QUEUE_FILE)
    except (OSError, ValueError):
        return None     # RunInfo lists a queued run whose queue.json is damaged or lost as damaged, saying why


def write_entry(run: Run, entry: dict) -> None:
    atomic_write_json(run.path / QUEUE_FILE, entry)


@contextlib.contextmanager
def holding(run: Run) -> Iterator[Run]:
    """Hold the run's lock for a moment (raises RunLockedError when a process trains or starts it)."""
    run.acquire_lock()
    try:
        yield run
    finally:
        run.release_lock()


def is_queued(run: Run, entry: dict | None = None) -> bool:
    entry = read_entry(run) if entry is None else entry
    return bool(entry) and entry.get("position") is not None and live_state(run) == "queued"


@dataclass
class Queued:
    run: Run
    entry: dict

    @property
    def key(self) -> tuple:
        return (float(self.entry.get("position") or 0), float(self.entry.get("added_at") or 0), self.run.id)


def entries(store: RunStore) -> Iterator[tuple[Run, dict]]:
    """Every run that has a queue.json (queued, placed by a scheduler, or done)."""
    for run in store.runs():
        if (run.path / QUEUE_FILE).is_file():
            entry = read_entry(run)
            if entry is not None:
                yield run, entry


def queued(store: RunStore) -> list[Queued]:
    """The queued runs in the order they start."""
    out = [Queued(run, e) for run, e in entries(store) if e.get("position") is not None and live_state(run) == "queued"]
    return sorted(out, key=lambda q: q.key)


def enqueue(store: RunStore, configs: list[RunConfig]) -> list[Run]:
    """Create one queued run per config, placed after every run already queued, in the given order. Raises RunError
    (a read-only or full disk) having removed the runs it made."""
    waiting = queued(store)
    last = max((float(q.entry.get("position") or 0) for q in waiting), default=0.0)
    runs: list[Run] = []
    try:
        for i, cfg in enumerate(configs, start=1):
            runs.append(store.create(cfg, state="queued"))
            write_entry(runs[-1], {"position": int(last) + i, "added_at": now(), "launches": 0, "retries": 0,
                                   "oom_retried": False, "settled": False})
            runs[-1].update_status(in_queue=True)     # a queue's run: a lost queue.json makes it damaged
            runs[-1].log(f"queued at position {len(waiting) + i}")
    except (RunError, OSError) as exc:    # a read-only or full disk: none of this call's runs stays behind
        for run in runs:
            try:
                store.delete(run.id)
            except (RunError, OSError):   # a scheduler started it meanwhile: it is a run now
                pass
        if isinstance(exc, RunError):
            raise
        raise RunError(f"cannot queue runs in {store.root}: {write_error(exc, store.root)}") from None
    return runs


def requeue(store: RunStore, run_id: str, why: str | None = None) -> Run:
    """Put a run that can continue (stopped, crashed, failed, out-of-memory) back in the queue, last; the
    scheduler then resumes it from its checkpoint. ``why`` replaces "was <state>" in events.log (an extended
    finished run was never stopped). Raises RunError when it cannot, RunLockedError when a process trains it."""
    run = store.get(run_id)
    with holding(run):
        state = live_state(run)
        state = "crashed" if state in ACTIVE else state       # we hold its lock: whoever said running is gone
        refused = requeue_refusal(state)
        if refused is not None:
            raise RunError(f"run {run.id} {refused.text}")
        if is_queued(run):
            return run
        last = max((float(q.entry.get("position") or 0) for q in queued(store)), default=0.0)
        write_entry(run, {**(read_entry(run) or {}), "position": int(last) + 1, "added_at": now(), "retries": 0,
                          "oom_retried": False, "settled": False, "pid": None, "slot": None, "device": None})
        run.update_status(state="queued", updated_at=now(), in_queue=True)
        run.log(f"queued again at position {len(queued(store))} ({why or f'was {state}'})")
    return run


def move(store: RunStore, run_id: str, position: int) -> list[str]:
    """Put a queued run at ``position`` (1 = next to start; past the end = last). Returns the new order.

    Raises RunError when the run is not queued. Every queued run is renumbered 1..n; a run that a scheduler is
    starting at this very moment is left out (it is leaving the queue)."""
    run = store.get(run_id)
    order = queued(store)
    ids = [q.run.id for q in order]
    if run.id not in ids:
        raise RunError(f"run {run.id} {_why_not_queued(run)}; only queued runs can move")
    if position < 1:
        raise ValueError(f"position must be 1 or more, got {position}")
    item = order.pop(ids.index(run.id))
    order.insert(min(position, len(order) + 1) - 1, item)
    new = []
    for i, q in enumerate(order, start=1):
        try:
            with holding(q.run):
                entry = read_entry(q.run)
                if entry is None or entry.get("position") is None:
                    continue
                if entry.get("position") != i:
                    write_entry(q.run, {**entry, "position": i})
                new.append(q.run.id)
        except RunLockedError:
            continue
    if run.id in new:
        run.log(f"moved to position {new.index(run.id) + 1} of the queue")
    return new


def _why_not_queued(run: Run) -> str:
    """'is not queued (state: stopped)'; for a run whose state says queued, why it is not in the queue."""
    state = live_state(run)
    if state != "queued":
        return f"is not queued (state: {state})"
    entry = read_entry(run)
    if entry is None:
        return "is not in the queue (its queue.json is damaged or missing: see `runs`)"
    return "is being started by a scheduler (it has left the queue)" if entry.get("slot") else \
        "is not in the queue (no position)"


def remove(store: RunStore, run_id: str, delete: bool = False) -> str:
    """Take a queued run out of the queue: it becomes a stopped run (resumable by hand), or its folder goes with
    ``delete``. Raises RunError when it is not queued, RunLockedError (saying what it does) when a process holds it."""
    run = store.get(run_id)
    try:
        run.acquire_lock()
    except RunLockedError:
        raise RunLockedError(f"run {run.id} {busy_text(run)}") from None
    run.release_lock()
    with holding(run):
        if not is_queued(run):
            raise RunError(f"run {run.id} {_why_not_queued(run)}; only queued runs can be removed"
                           + ("; stop it first" if live_state(run) in ACTIVE else ""))
        if delete:
            shutil.rmtree(run.path)
            return "deleted"
        write_entry(run, {**(read_entry(run) or {}), "position": None, "settled": True})
        run.update_status(state="stopped", updated_at=now())
        run.log("removed from the queue (resume it by hand, or delete it)")
    return "stopped"


def leave_by_hand(run: Run) -> None:
    """A process no scheduler started is about to train this run (`resume` by hand, the app's resume): the queue has
    nothing more to do for it, so a scheduler never starts it a second time, never retries it and never counts it
    in one of its slots. Call it holding the run's lock (no scheduler claims the run meanwhile)."""
    entry = read_entry(run)
    if entry is None or (entry.get("settled") and entry.get("position") is None):
        return
    if entry.get("pid") in (os.getpid(), os.getppid()):
        return          # the scheduler started this process (or torchrun, this process's parent, for the run)
    ids = [q.run.id for q in queued(RunStore(run.path.parent))]
    where = f" (it was number {ids.index(run.id) + 1})" if run.id in ids else ""
    write_entry(run, {**entry, "position": None, "settled": True, "slot": None, "device": None, "pid": None})
    run.log(f"resumed by hand: it left the queue{where}; the scheduler has nothing more to do for it")


def by_hand(run: Run, entry: dict | None = None) -> bool:
    """The run left the queue for a process no scheduler started (``leave_by_hand``; a scheduler's own settled
    entries keep the slot they were placed in, and a run taken out with ``remove`` is no scheduler's)."""
    entry = read_entry(run) if entry is None else entry
    return bool(entry) and bool(entry.get("settled")) and not entry.get("slot") and entry.get("position") is None


def busy_text(run: Run) -> str:
    """What the process that holds ``run``'s lock is doing, from the run's own state: 'is running (step 120, epoch 1
    done)', or 'is starting right now' while a scheduler launches its trainer."""
    try:
        status = run.read_status()
    except (OSError, ValueError):
        status = {}
    state = status.get("state")
    if state in ACTIVE:
        return f"is {state} (step {status.get('step') or 0}, epoch {status.get('epoch') or 0} done)"
    if state == "queued":
        return "is starting right now (a scheduler launches its trainer)"
    return f"is {state or 'unreadable'}, and a process holds it right now (a resume or repair)"


def placement(run: Run, status: dict | None = None) -> dict | None:
    """Where a scheduler placed this run ({slot, device, pid, ...}) if that process is the one training it now
    (or starting to: the trainer has not written its pid yet but holds the lock the scheduler handed it)."""
    entry = read_entry(run)
    if not entry or not entry.get("slot") or entry.get("settled") or not entry.get("pid"):
        return None
    try:
        status = status if status is not None else run.read_status()
    except (OSError, ValueError):
        return None
    if entry["pid"] in (status.get("pid"), status.get("ppid")) or (status.get("state") == "queued" and run.is_locked()):
        return entry
    return None


def queue_rows(store: RunStore, infos=None) -> list[dict]:
    """What ``queue`` lists: queued runs in order (position), then every run starting, running or paused
    (device and slot where a scheduler placed it). ``infos``: the RunInfo of every run when the caller has them."""
    rows = []
    for i, q in enumerate(queued(store), start=1):
        rows.append(_row(q.run.info(), i, {}, q.entry))
    for info in (store.list() if infos is None else infos):
        where = placement(store.get(info.id), info.status) if info.state in ACTIVE + ("queued",) else None
        if info.state in ACTIVE or where:
            rows.append(_row(info, None, where or {}, where or {}))
    return rows


def _row(info, position: int | None, where: dict, entry: dict) -> dict:
    state = "starting" if info.state == "queued" and where else info.state
    return {"position": position, "id": info.id, "state": state,
            "device": where.get("device") or (info.status.get("device") if info.state in ACTIVE else None),
            "slot": where.get("slot"), "label": info.config.label() if info.config else "",
            "progress": info.progress, "epochs_done": info.epochs_done, "total_epochs": info.total_epochs,
            "retries": int(entry.get("retries") or 0)}
