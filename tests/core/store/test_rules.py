"""The run rules (core/store/rules.py): one table of what each state allows, asked by the CLI and the TUI alike."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from core.spec.config import RunConfig
from core.store.info import STATES
from core.store.rules import (
    CONTINUES_AS_IS,
    continue_refusal,
    delete_refusal,
    extend_refusal,
    needs_repair,
    pause_refusal,
    requeue_refusal,
    resume_refusal,
    stop_refusal,
)
from core.store.runs import RunError, RunStore


@dataclass
class Info:                 # the fields of core.store.info.RunInfo that the rules read
    state: str
    status: dict = field(default_factory=lambda: {"pid": 42, "epoch": 3, "step": 120})
    damaged: str = ""
    repairable: bool = False
    job: dict = field(default_factory=dict)
    error: str = "loss became nan"
    unqueued: bool = False

    @property
    def epochs_done(self) -> int:
        return self.status["epoch"]

    @property
    def step(self) -> int:
        return self.status["step"]


# state, extend_to, repair, handed_over -> refusal kind (None: allowed)
RESUME = [
    ("queued", None, False, False, None), ("stopped", None, False, False, None),
    ("crashed", None, False, False, None), ("failed", None, False, False, None),
    ("out-of-memory", None, False, False, None),
    ("running", None, False, False, "active"), ("paused", None, False, False, "active"),
    ("running", None, False, True, None),                 # the scheduler handed this process the run's lock
    ("finished", None, False, False, "finished"), ("finished", 5, False, False, None),
    ("finished", 3, False, False, "not-longer"), ("stopped", 2, False, False, "not-longer"),
    ("diverged", None, False, False, "diverged"), ("diverged", 6, False, False, None),
    ("damaged", None, False, False, "damaged"), ("damaged", None, True, False, "damaged"),   # not repairable
]


@pytest.mark.parametrize("state,extend_to,repair,handed_over,kind", RESUME)
def test_resume_rules(state, extend_to, repair, handed_over, kind):
    got = resume_refusal(Info(state), extend_to=extend_to, repair=repair, handed_over=handed_over)
    assert (got.kind if got else None) == kind


def test_a_repairable_damaged_run_resumes_only_with_repair_and_the_texts_say_why():
    info = Info("damaged", damaged="status.json is missing", repairable=True)
    assert resume_refusal(info, repair=True) is None
    assert resume_refusal(info).text == "is damaged (status.json is missing)"
    assert resume_refusal(Info("finished")).text == "is finished (3 epochs)"
    assert resume_refusal(Info("stopped"), extend_to=3).text == "has already done 3 epochs; ask for more than 3"
    assert resume_refusal(Info("paused")).text == "is paused in another process (pid 42)"


STOP = [("running", False, None), ("paused", False, None), ("queued", True, None), ("queued", False, "not-running"),
        ("stopped", False, "not-running"), ("finished", False, "not-running"), ("crashed", False, "crashed")]


@pytest.mark.parametrize("state,queued_here,kind", STOP)
def test_stop_rules(state, queued_here, kind):
    got = stop_refusal(Info(state), queued_here=queued_here)
    assert (got.kind if got else None) == kind


def test_a_run_waiting_in_slurms_queue_can_be_stopped_and_the_stop_texts():
    assert stop_refusal(Info("queued", job={"job_id": "7"})) is None
    assert stop_refusal(Info("stopped")).text == "is not running (state: stopped)"
    assert stop_refusal(Info("crashed")).text == "is not running: its process is gone (crashed at step 120)"


@pytest.mark.parametrize("state", ["queued", "running", "paused", "stopped", "finished", "crashed", "damaged"])
def test_pause_continue_and_delete_rules(state):
    assert (pause_refusal(state) is None) == (state == "running")
    assert (continue_refusal(state) is None) == (state == "paused")
    assert (delete_refusal(Info(state)) is None) == (state not in ("running", "paused"))
    assert delete_refusal(Info(state), in_app=True) is not None     # an app is about to train it
    assert delete_refusal(None) is None                             # gone: nothing to protect


@pytest.mark.parametrize("state", STATES)
def test_the_states_that_continue_as_they_are_are_the_ones_resume_takes_and_the_queue_takes_back(state):
    """CONTINUES_AS_IS (what info.py's lost-checkpoint check and the queue's requeue ask) is resume's own rule."""
    as_is = resume_refusal(Info(state)) is None
    assert as_is == (state in CONTINUES_AS_IS)
    assert (requeue_refusal(state) is None) == as_is
    assert (extend_refusal(Info(state)) is None) == (state == "finished")
    assert needs_repair(Info(state)) == (state == "damaged")
    assert not needs_repair(Info("damaged", unqueued=True))       # only the queue lost it: it trains as it is


def test_requeue_says_every_state_it_takes_back_out_of_memory_too(tmp_path):
    """core/serve/queue.py's requeue once said 'only a stopped, crashed or failed run can be queued again', though it
    took out-of-memory runs back too: its text now comes from the rules."""
    from core.serve import queue as Q

    store = RunStore(tmp_path)
    run = store.create(RunConfig(dataset="synthetic", epochs=1))
    run.update_status(state="finished")
    with pytest.raises(RunError, match="only a stopped, crashed, failed or out-of-memory run can be queued again"):
        Q.requeue(store, run.id)
    run.update_status(state="out-of-memory")
    assert Q.is_queued(Q.requeue(store, run.id))
