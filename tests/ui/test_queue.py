"""The queue in the TUI (issue 9): the queue & devices screen (reorder, remove), the devices panel without NVML,
and a grid launched from the form into the queue that the scheduler finishes after the app has quit."""
from __future__ import annotations

import json
import time

import pytest

from core.serve import gpus
from core.serve import queue as Q
from core.serve import scheduler_control as S
from core.serve.gpus import GpuReading
from core.spec.field_help import FORM_FIELDS
from core.store.runs import Run, RunStore
from screens.app import make_app
from screens.confirm import ConfirmScreen
from screens.queue_devices import QueueScreen
from screens.widgets.devices import DevicesPanel, render_devices
from tests.conftest import tiny_config

from .helpers import POLL, launched, press, screen_text, type_into, wait_for


@pytest.fixture
def no_nvml(monkeypatch):
    """A machine without an NVIDIA driver (whatever this one has)."""
    monkeypatch.setitem(gpus._nvml_state, "ok", False)
    monkeypatch.setitem(gpus._nvml_state, "why", "NVMLError_LibraryNotFound: NVML Shared Library Not Found")


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    yield root
    S.stop(root, timeout=15)


def wait_plain(condition, what: str, timeout: float) -> None:
    """For after the app has gone: poll the folder with a deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_devices_panel_text():
    assert render_devices(None, {"cpu": ["a", "b"]}, "no driver").plain == (
        "CPU only  no NVIDIA GPU here (no driver)\ncpu  runs: a, b")
    gpus = [GpuReading(0, "NVIDIA H200", 87, 30 * 2**30, 141 * 2**30, 61, "GPU-aa", "cuda:0"),
            GpuReading(1, "NVIDIA H200", None, 0, 141 * 2**30, None, "GPU-bb", "cuda:1")]
    text = render_devices(gpus, {"cuda:0": ["r20", "r56"]}).plain.splitlines()
    assert text[0].startswith("cuda:0 NVIDIA H200") and "util  87%" in text[0] and "mem  30.0/141 GiB" in text[0]
    assert "61°C" in text[0] and text[0].endswith("runs: r20, r56")
    assert "util    -" in text[1] and text[1].endswith("idle")
    # CUDA_VISIBLE_DEVICES=2 here: NVML's GPU 2 is our cuda:0 (its runs show there), GPU 0 is none of ours
    gpus = [GpuReading(0, "NVIDIA H200", 5, 0, 141 * 2**30, 40, "GPU-aa", None),
            GpuReading(2, "NVIDIA H200", 90, 0, 141 * 2**30, 70, "GPU-cc", "cuda:0")]
    text = render_devices(gpus, {"cuda:0": ["r20"]}).plain.splitlines()
    assert text[0].startswith("gpu 0 ") and text[0].endswith("idle")
    assert text[1].startswith("cuda:0 ") and text[1].endswith("runs: r20")


async def test_queue_screen_reorders_and_removes_and_says_cpu_only(tmp_path, no_nvml):
    store = RunStore(tmp_path / "runs")
    Q.enqueue(store, [tiny_config(name=n) for n in ("q1", "q2", "q3")])
    app = make_app(runs_dir=store.root, poll_interval=POLL)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "g")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen), 5, "the queue screen")
        screen = app.screen
        await wait_for(pilot, lambda: [(r["position"], r["id"]) for r in screen.rows] == [(1, "q1"), (2, "q2"),
                                                                                         (3, "q3")], 5, "the rows")
        await wait_for(pilot, lambda: "CPU only" in str(screen.query_one(DevicesPanel).render()), 10,
                       "the devices panel")
        assert screen.query_one(DevicesPanel).readings is None
        assert "no scheduler yet (launching into the queue starts one)" in screen_text(app)
        await press(pilot, "down", "shift+down")                # q2 goes after q3
        await wait_for(pilot, lambda: [r["id"] for r in screen.rows] == ["q1", "q3", "q2"], 5, "q2 moved down")
        assert [q.run.id for q in Q.queued(store)] == ["q1", "q3", "q2"]
        assert screen.current_id() == "q2"                      # the cursor follows the moved run
        await press(pilot, "shift+up", "shift+up")              # ... and to the top (two keys at once: both count)
        await wait_for(pilot, lambda: [r["id"] for r in screen.rows] == ["q2", "q1", "q3"], 5, "q2 at the top")
        assert [q.run.id for q in Q.queued(store)] == ["q2", "q1", "q3"]
        await press(pilot, "x")                                 # take q2 out: it stays as a stopped run
        await wait_for(pilot, lambda: [r["id"] for r in screen.rows] == ["q1", "q3"], 5, "q2 to leave the list")
        assert Run(store.root / "q2").info().state == "stopped"
        await press(pilot, "escape")
        assert not isinstance(app.screen, QueueScreen)


async def test_grid_from_the_form_goes_to_the_queue_and_finishes_after_the_app_quits(runs):
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        for name, value in tiny_config(name="qgrid", channels_last="off", iterations=0).to_dict().items():
            if name in FORM_FIELDS:                               # (a study's own fields are not form fields)
                form.set_value(name, value)                       # the tiny settings, as a clone would fill them
        await type_into(pilot, "#f-seed", "1-2")                  # a grid of two seeds, typed
        form.query_one("#where").value = "queue"
        await pilot.pause()
        assert form.errors == {}, form.errors
        assert "queues 2 run(s) for the scheduler" in str(form.query_one("#summary").render())
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.rows, 5, "the queue screen")
        assert {r["id"] for r in app.screen.rows} == {"qgrid-s1", "qgrid-s2"} and not app.in_app
        await wait_for(pilot, lambda: S.read_state(runs) is not None, 60, "the scheduler to serve the folder")
        await press(pilot, "escape", "q")                       # nothing trains in the app: it quits at once
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to exit")
    quit_at = time.time()
    status = {i: (lambda i=i: json.loads((runs / i / "status.json").read_text())) for i in ("qgrid-s1", "qgrid-s2")}
    wait_plain(lambda: all(s()["state"] == "finished" for s in status.values()), "the scheduler to finish the grid",
               120)
    assert status["qgrid-s2"]()["finished_at"] > quit_at           # trained after the app had gone
    assert [Run(runs / i).read_config().seed for i in ("qgrid-s1", "qgrid-s2")] == [1, 2]


async def test_quit_can_hand_a_training_run_to_the_queue(runs):
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await launched(pilot, [tiny_config(name="handover", epochs=200, channels_last="off"),
                               tiny_config(name="next-up", epochs=200, channels_last="off")])  # waits in the app queue
        await wait_for(pilot, lambda: app.watcher.infos["handover"].step > 0, 60, "the run to train")
        await press(pilot, "q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the quit dialog")
        # it once said "2 run(s) train in this app" of one training run and one waiting, and queued only the first
        question = " ".join(str(app.screen.query_one("#question").render()).split())
        assert "handover trains in this app" in question and "1 more wait in this app's queue: next-up" in question
        await press(pilot, "tab", "enter")                     # the second answer: Queue
        await wait_for(pilot, lambda: not app.is_running, 60, "the app to exit")
    # the terminal is told what was done once the app has gone (issue 12: "quitting with Background says what")
    said = str(app.return_value)
    assert "Queued to continue from their checkpoints: handover; queued to start: next-up" in said, said
    assert "scheduler" in said and f"queue --runs-dir {runs}" in said
    assert Q.is_queued(Run(runs / "next-up"))                  # the scheduler will start it, not only the first
    Q.remove(RunStore(runs), "next-up")                         # (the test needs only the first to go on)
    run = Run(runs / "handover")
    stopped_at = run.read_status()["step"]
    assert stopped_at > 0 and "queued again at position 1 (was stopped)" in "\n".join(run.read_events())
    wait_plain(lambda: run.read_status()["state"] == "running" and run.read_status()["step"] > stopped_at,
               "the scheduler to resume it past its checkpoint", 90)
    run.request("stop")
    wait_plain(lambda: run.read_status()["state"] == "stopped", "the run to obey the stop request", 60)


async def test_r_on_a_stopped_run_launched_into_the_queue_resumes_it_in_the_queue(tmp_path, no_nvml):
    """Issue 21, point 3: r on a stopped run that went through the queue trained it inside the app, beside the
    scheduler's runs; it goes back to the queue, as it was launched (the detail keeps 'Resume here')."""
    store = RunStore(tmp_path / "runs")
    Q.enqueue(store, [tiny_config(name="via-queue")])
    Q.remove(store, "via-queue")                                 # stopped, with its queue.json
    app = make_app(runs_dir=store.root, poll_interval=POLL)
    served = []
    app.start_scheduler = lambda: served.append(True)           # no scheduler process in this test
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "r")                                  # the runs table's only run is under the cursor
        await wait_for(pilot, lambda: served, 5, "the queue to be served")
        assert not app.is_in_app("via-queue")
        assert Q.is_queued(Run(store.root / "via-queue"))
        assert Run(store.root / "via-queue").info().state == "queued"


async def test_quitting_with_only_queued_runs_says_what_goes_on_and_who_serves_them(tmp_path, no_nvml):
    """Issue 21, point 8: with runs waiting in the folder's queue and nothing training in the app, quitting printed
    nothing, though the README says the terminal reports what goes on."""
    store = RunStore(tmp_path / "runs")
    Q.enqueue(store, [tiny_config(name=n) for n in ("wait-1", "wait-2")])
    app = make_app(runs_dir=store.root, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.queue_order == ["wait-1", "wait-2"], 5, "the folder's queue")
        await press(pilot, "ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, 10, "the app to exit")
    said = str(app.return_value)
    assert "waiting in the folder's queue: wait-1, wait-2." in said, said
    assert f"tui_app.py scheduler --runs-dir {store.root}" in said      # nobody serves it yet: how to start one
    assert f"queue --runs-dir {store.root}" in said


async def test_the_queue_footer_names_enter(tmp_path, no_nvml):
    """Issue 21, point 9: the queue screen's footer omitted enter (open the run), which its help names."""
    store = RunStore(tmp_path / "runs")
    Q.enqueue(store, [tiny_config(name="q1")])
    app = make_app(runs_dir=store.root, poll_interval=POLL)
    async with app.run_test(size=(110, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "g")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen), 5, "the queue screen")
        await wait_for(pilot, lambda: "⏎ Open" in screen_text(app).splitlines()[-1]
                       or "enter Open" in screen_text(app).splitlines()[-1], 5, "enter in the footer")


async def test_g_opens_the_queue_whatever_scheduler_json_holds(tmp_path, no_nvml):
    """scheduler.json of the wrong types while a scheduler holds the folder's lock ended the app at g (issue 20)."""
    store = RunStore(tmp_path / "runs")
    Q.enqueue(store, [tiny_config(name="q1")])
    lock = S.lock_of(store.root)
    lock.acquire()
    (store.root / S.STATE_FILE).write_text(json.dumps({"pid": "x", "slots": "nope"}))
    app = make_app(runs_dir=store.root, poll_interval=POLL)
    try:
        async with app.run_test(size=(110, 30)) as pilot:
            await pilot.pause()
            await press(pilot, "g")
            await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen) and app.screen.rows, 5, "the rows")
            assert [r["id"] for r in app.screen.rows] == ["q1"]
            assert "scheduler pid" in screen_text(app)
    finally:
        lock.release()


def test_a_queued_run_trained_in_the_app_leaves_the_queue(tmp_path):
    # the app's resume of a queue's run beat the scheduler: queue.json still held its place (issue 35, item 12)
    import threading

    from screens.training import train_one

    store = RunStore(tmp_path / "runs")
    run, other = Q.enqueue(store, [tiny_config(epochs=1, channels_last="off"), tiny_config(epochs=1, seed=2)])
    state, _ = train_one(store, run.id, threading.Event(), threading.Event(), lambda message: None)
    assert state == "finished" and not run.is_locked()
    entry = Q.read_entry(run)
    assert entry["position"] is None and entry["settled"] is True, entry
    assert [q.run.id for q in Q.queued(store)] == [other.id]
