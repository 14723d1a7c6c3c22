"""What a user may do with a run in its present state, and why not: the one place for these rules.

The CLI (``stop``, ``resume``, ``resume --epochs``, ``resume --repair``) and the TUI (its keys, buttons and footers)
both ask here, so a run the CLI resumes is one the app offers to resume, and the reasons match. Each function returns
``None`` when the action applies, else a ``Refusal``: ``kind`` says which rule refused (clients add their own hint:
a flag for the CLI, a key for the TUI) and ``text`` says why as a predicate of the run, in words that need no client
("is finished (3 epochs)": the CLI prints "run r20 is finished (3 epochs); use --epochs M ...", the TUI "cannot
resume r20: it is finished (3 epochs); x on its detail screen ...").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.util.formatting import epoch_count

ACTIVE = ("running", "paused")               # a live process owns the run
PAUSABLE = ("running",)
CONTINUABLE = ("paused",)
# what `resume` continues from its checkpoint as it is (``resume_refusal``'s fall-through, and what the queue takes
# back); a finished or diverged run continues only when made longer, a damaged one only through a repair
CONTINUES_AS_IS = ("queued", "stopped", "crashed", "failed", "out-of-memory")


@dataclass(frozen=True)
class Refusal:
    kind: str     # damaged, active, diverged, finished, not-longer, crashed, not-running, not-paused, queued,
    #               not-finished, not-resumable
    text: str


def resume_refusal(info: Any, *, extend_to: int | None = None, repair: bool = False,
                   handed_over: bool = False) -> Refusal | None:
    """May ``info``'s run continue from its checkpoint (``extend_to``: to that many epochs in total; ``repair``:
    rebuilding damaged run files first; ``handed_over``: a scheduler gave this process the run's lock)? A queued,
    stopped, crashed, failed or out-of-memory run continues as it is; a finished or diverged one only when made
    longer; a damaged one only through a repair that can recover it, or when only the queue lost it (a queued
    run whose queue.json is damaged or missing: ``RunInfo.unqueued``); a running or paused one never (stop it first)."""
    state = info.state
    if needs_repair(info) and not (repair and (info.repairable or getattr(info, "restartable", False))):
        return Refusal("damaged", f"is damaged ({info.damaged})")
    if state in ACTIVE and not handed_over:
        return Refusal("active", f"is {state} in another process (pid {info.status.get('pid')})")
    if state == "diverged" and extend_to is None:
        return Refusal("diverged", f"diverged ({info.error}); resuming would repeat it")
    if state == "finished" and extend_to is None:
        return Refusal("finished", f"is finished ({epoch_count(info.epochs_done)})")
    if state == "finished" and extend_to is not None and getattr(info, "checkpoint_lost", False):
        return Refusal("damaged", "has no checkpoint.pt to continue from; its results stand, but it cannot train "
                                  "longer: start a new run with more epochs")
    if extend_to is not None and extend_to <= info.epochs_done:
        return Refusal("not-longer", f"has already done {epoch_count(info.epochs_done)}; "
                                     f"ask for more than {info.epochs_done}")
    return None


def needs_repair(info: Any) -> bool:
    """A damaged run continues only through ``resume --repair``, unless only the queue lost it (``unqueued``: it
    trains as it is)."""
    return info.state == "damaged" and not getattr(info, "unqueued", False)


def requeue_refusal(state: str) -> Refusal | None:
    """May a run in ``state`` go back in the folder's queue (the scheduler resumes it from its checkpoint)?"""
    if state in CONTINUES_AS_IS:
        return None
    *others, last = [s for s in CONTINUES_AS_IS if s != "queued"]     # (a queued run is in the queue already)
    allowed = f"{', '.join(others)} or {last}"
    return Refusal("not-resumable", f"is {state}; only a {allowed} run can be queued again")


def extend_refusal(info: Any) -> Refusal | None:
    """What an app offers as "more epochs" (its extend key and button): a finished run (any other run that can go
    on resumes as it is, with the same rule as ``resume --epochs``)."""
    if info.state != "finished":
        return Refusal("not-finished", f"is {info.state}; only a finished run is extended")
    return None


def waiting_in_slurm(info: Any) -> bool:
    """The run waits in Slurm's queue (its job is pending): stopping it cancels the job."""
    return info.state == "queued" and bool(info.job)


def stop_refusal(info: Any, *, queued_here: bool = False) -> Refusal | None:
    """May ``info``'s run be asked to stop? A running or paused run (it checkpoints at its next iteration), a run
    waiting in an app's own queue (``queued_here``: it stays queued) or in Slurm's queue (its job is cancelled)."""
    state = info.state
    if state in ACTIVE or queued_here or waiting_in_slurm(info):
        return None
    if state == "crashed":
        return Refusal("crashed", f"is not running: its process is gone (crashed at step {info.step})")
    return Refusal("not-running", f"is not running (state: {state})")


def pause_refusal(state: str) -> Refusal | None:
    """Only a running run pauses (it keeps its memory and device; continuing is instant)."""
    return None if state in PAUSABLE else Refusal("not-running", f"is {state}; only a running run can pause")


def continue_refusal(state: str) -> Refusal | None:
    return None if state in CONTINUABLE else Refusal("not-paused", f"is {state}, not paused")


def delete_refusal(info: Any, *, in_app: bool = False) -> Refusal | None:
    """A run a live process owns (or that an app is about to train) is never deleted under it."""
    if info is not None and (info.state in ACTIVE or in_app):
        return Refusal("active", f"is {info.state}; stop it before deleting")
    return None


def offer_resume_refusal(info: Any) -> Refusal | None:
    """What an app offers as "resume" (its key, its buttons): ``resume_refusal``'s rule, less a run already waiting
    in the folder's queue (it starts in its turn; the CLI's ``resume`` of one takes it out and trains it now)."""
    if info.state == "queued" and info.status.get("in_queue"):
        return Refusal("queued", "is queued already: the scheduler starts it in its turn (g shows the queue)")
    return resume_refusal(info)
