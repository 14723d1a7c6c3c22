"""The trainer on the CPU: runs to the end, resumes exactly, obeys stop/pause, fails readably."""
from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from core.store.runs import RunLockedError, RunStore, run_summary_row
from core.train.checkpoint import load_checkpoint
from core.train.events import Ended, EpochEnded, Progress, Started
from core.train.trainer import Trainer, train_run
from tests.conftest import ROOT, tiny_config
from tests.stopping import StopAfter, training_thread

TIMING_KEYS = {"seconds", "eval_seconds", "images_per_s", "peak_mem_bytes", "reserved_mem_bytes"}


def metrics(run):
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in run.read_epochs()]


def test_tiny_run_finishes_and_writes_its_folder(tmp_path):
    events = []
    run, state = train_run(RunStore(tmp_path), tiny_config(epochs=3, max_train_images=512), on_event=events.append)
    assert state == "finished"
    for name in ("config.json", "status.json", "epochs.jsonl", "steps.jsonl", "checkpoint.pt", "best.pt", "events.log"):
        assert (run.path / name).exists(), name
    epochs = run.read_epochs()
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert [r["step"] for r in epochs] == [16, 32, 48]
    steps = run.read_steps()
    assert [s["step"] for s in steps] == list(range(4, 49, 4))
    assert epochs[-1]["test_err"] < 70, "a depth-8 net learns the synthetic patterns well beyond chance (90%)"
    status = run.read_status()
    assert status["state"] == "finished" and status["epoch"] == 3 and status["step"] == 48
    for key in ("torch", "host", "git_commit", "python"):
        assert key in status["env"]
    assert status["seed"] == 0 and status["deterministic"] is False
    assert status["images_per_s"] > 0 and status["epoch_s"] == epochs[-1]["seconds"]
    assert all(r["images_per_s"] > 0 and r["seconds"] > 0 and "peak_mem_bytes" in r for r in epochs)
    kinds = [type(e) for e in events]
    assert kinds[0] is not Ended and Started in kinds and kinds.count(EpochEnded) == 3 and kinds[-1] is Ended
    assert "model" in load_checkpoint(run.checkpoint_path)


@pytest.mark.parametrize("stop_at", [5, 13, 16])
def test_resume_is_exact(tmp_path, stop_at):
    """Stopped mid-epoch (5, 13) or right at an epoch's end (16), then resumed: bitwise the same weights and
    the same per-epoch metrics and steps as the uninterrupted run."""
    cfg = tiny_config(epochs=3, deterministic=True, augment=True, log_every=3, optimizer="nesterov",
                      schedule="multistep", milestones=(2,), milestone_unit="epoch", weight_decay=5e-4)
    store = RunStore(tmp_path)
    ref, state = train_run(store, cfg.with_overrides(name="ref"))
    assert state == "finished"

    run = store.create(cfg.with_overrides(name="cut"))
    assert Trainer(run, stop_event=StopAfter(stop_at)).run() == "stopped"
    status = run.read_status()
    assert status["state"] == "stopped" and status["step"] == stop_at
    assert run.info().state == "stopped"
    assert Trainer(run).run() == "finished"

    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(run.checkpoint_path)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert metrics(ref) == metrics(run)
    assert ref.read_steps() == run.read_steps()
    # events.log counts epochs one way: the epoch in progress, 1-based, in the checkpoint, stop and resume lines
    epoch = -(-stop_at // 8)                                       # 8 iterations per epoch
    events = "\n".join(run.read_events())
    for line in (f"checkpoint saved at epoch {epoch}, step {stop_at} (", f"stopped at epoch {epoch}, step {stop_at}",
                 f"resumed at epoch {epoch}, step {stop_at} of 24"):
        assert line in events, (line, events)
    assert "stopped: stopped" not in events and "checkpoint saved at epoch 1, step 8 (epoch done)" in events


class LookedAt(threading.Event):
    """A pause event that counts how often the trainer looks at it (a paused trainer looks every 50 ms)."""

    def __init__(self):
        super().__init__()
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return super().is_set()


def wait_until(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_pause_holds_and_continue_resumes(tmp_path):
    run = RunStore(tmp_path).create(tiny_config(epochs=2))
    pause = LookedAt()
    seen = []

    def on_event(e):
        seen.append(e)
        if isinstance(e, Progress) or isinstance(e, Started):
            pause.set()

    with training_thread(lambda stop: Trainer(run, on_event=on_event, pause_event=pause, stop_event=stop).run()) as t:
        wait_until(lambda: run.read_status().get("state") == "paused", "the pause")
        step = run.read_status()["step"]
        assert run.info().state == "paused"
        looks = pause.looks     # held: the trainer goes round its paused loop ten times without a step
        wait_until(lambda: pause.looks >= looks + 10, "the paused trainer to look at its pause ten times")
        assert run.read_status()["step"] == step and run.read_status()["state"] == "paused"
        t.stop.set()
        assert t.result(30) == "stopped"
    assert Trainer(run).run() == "finished"


def test_request_file_stops_a_run_from_another_process(tmp_path):
    run = RunStore(tmp_path).create(tiny_config(epochs=200))
    with training_thread(lambda stop: Trainer(run, stop_event=stop).run()) as t:   # stop: only if the request fails
        wait_until(lambda: run.read_status().get("step", 0) >= 3, "three steps")
        run.request("stop")
        assert t.result(30) == "stopped"
    assert run.read_request() is None
    assert "stop requested from another process" in "\n".join(run.read_events())


def test_second_writer_is_refused(tmp_path):
    run = RunStore(tmp_path).create(tiny_config(epochs=200))
    with training_thread(lambda stop: Trainer(run, stop_event=stop).run()):
        wait_until(lambda: run.read_status().get("state") == "running", "the run to train")
        with pytest.raises(RunLockedError):
            Trainer(run).run()
        assert run.info().state == "running"


def test_divergence_ends_the_run_and_names_the_step(tmp_path):
    run, state = train_run(RunStore(tmp_path), tiny_config(lr=1e8, momentum=0.0, weight_decay=0.0, epochs=3))
    assert state == "diverged"
    err = run.read_status()["error"]
    assert "at step" in err and ("nan" in err or "inf" in err)
    assert run.info().state == "diverged"


def small_memory(monkeypatch, images: int = 8) -> None:
    """Every model the trainer builds raises a (simulated) CUDA out-of-memory on batches over ``images``."""
    import core.train.setup as setup_mod

    real = setup_mod.create_model

    def build(*a, **kw):
        model = real(*a, **kw)

        def hook(module, args):
            if args[0].shape[0] > images:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        model.register_forward_pre_hook(hook)
        return model

    monkeypatch.setattr(setup_mod, "create_model", build)


def test_out_of_memory_splits_the_batch(tmp_path, monkeypatch):
    """A (simulated) CUDA OOM for batches over 8 images: the run continues in micro-batches, or fails readably."""
    small_memory(monkeypatch)
    store = RunStore(tmp_path)
    run, state = train_run(store, tiny_config(epochs=1, max_test_images=8, batch_size=32))
    assert state == "finished"
    assert run.read_status()["micro_batches"] == 4
    assert "micro-batches of 8" in "\n".join(run.read_events())

    run, state = train_run(store, tiny_config(epochs=1, on_oom="fail", batch_size=32))
    assert state == "out-of-memory"
    assert "batch size 32" in run.read_status()["error"]


def test_missing_dataset_fails_with_the_fix(tmp_path):
    cfg = tiny_config(dataset="cifar10", data_dir=str(tmp_path / "nowhere"), download=False)
    run, state = train_run(RunStore(tmp_path / "runs"), cfg)
    assert state == "failed"
    msg = run.read_status()["error"]
    assert "cifar-10" in msg.lower() and str(tmp_path / "nowhere") in msg


def test_checkpoint_with_arbitrary_pickle_is_refused(tmp_path):
    store = RunStore(tmp_path)
    run, _ = train_run(store, tiny_config(epochs=1))
    torch.save({"model": {}, "payload": Path("/etc/passwd")}, run.checkpoint_path)  # any non-tensor object
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):    # torch's weights_only loader
        load_checkpoint(run.checkpoint_path)
    run.update_status(state="stopped")
    assert Trainer(run).run() == "failed"
    assert "cannot be loaded" in run.read_status()["error"]


def test_error_warmup_switches_back_to_the_base_rate(tmp_path):
    run, state = train_run(RunStore(tmp_path), tiny_config(epochs=2, error_warmup="on", lr=0.1, log_every=2))
    assert state == "finished"
    lrs = [s["lr"] for s in run.read_steps()]
    assert lrs[0] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.1)
    assert "warm-up done" in "\n".join(run.read_events())


CHILD = """
import sys
sys.path.insert(0, {root!r})
from core.store.runs import RunStore
from core.train.trainer import Trainer
Trainer(RunStore({runs!r}).get({rid!r})).run()
"""


def test_sigkill_leaves_a_crashed_run_that_resumes_to_the_end(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=12, max_train_images=512))
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), runs=str(tmp_path), rid=run.id)])
    try:
        deadline = time.monotonic() + 60
        while len(run.read_epochs()) < 2:
            assert proc.poll() is None, "child ended early"
            assert time.monotonic() < deadline, "child made no progress"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    info = store.list()[0]
    assert info.state == "crashed"
    assert Trainer(run).run() == "finished"
    assert [r["epoch"] for r in run.read_epochs()] == list(range(1, 13))
    steps = [s["step"] for s in run.read_steps()]
    assert steps == list(range(4, 12 * 16 + 1, 4))


def test_fp16_uses_a_checkpointed_gradient_scaler(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny_config(epochs=2, precision="fp16", deterministic=True))
    assert Trainer(run, stop_event=StopAfter(11)).run() == "stopped"
    scaler = load_checkpoint(run.checkpoint_path)["scaler"]
    assert scaler and scaler["scale"] > 0
    assert Trainer(run).run() == "finished"
    assert run.read_status()["precision"] == "fp16"
    ref, state = train_run(store, tiny_config(epochs=2, precision="fp16", deterministic=True, name="ref"))
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(run.checkpoint_path)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["scaler"] == b["scaler"]


class SlowStopAfter(StopAfter):
    """StopAfter whose every check also takes ``delay`` seconds of (training) time."""

    def __init__(self, n: int, delay: float):
        super().__init__(n)
        self.delay = delay

    def is_set(self) -> bool:
        time.sleep(self.delay)
        return super().is_set()


def test_epoch_speed_after_a_mid_epoch_resume_covers_the_whole_epoch(tmp_path):
    """Stopped after 12 of 16 iterations that took at least 1.2 s, then resumed: the epoch's seconds count both
    parts, and its images/s is no more than its 512 images over those 1.2 s (it once counted only the resumed part)."""
    run = RunStore(tmp_path).create(tiny_config(epochs=1, max_train_images=512))
    assert Trainer(run, stop_event=SlowStopAfter(12, 0.1)).run() == "stopped"
    assert run.read_status()["elapsed_s"] >= 1.2
    assert Trainer(run).run() == "finished"
    (row,) = run.read_epochs()
    assert row["seconds"] >= 1.2
    assert 0 < row["images_per_s"] <= 512 / 1.2
    assert run.read_status()["elapsed_s"] >= 1.2
    # what `show`, the runs table and the CSV print is that epoch's figure
    summary = run_summary_row(run.info())
    assert summary["images_per_s"] == row["images_per_s"] and summary["epoch_s"] == row["seconds"]


class LossProbe(threading.Event):
    """A stop event that records, at every iteration, the step and whether the trainer has a loss to show yet."""

    def __init__(self):
        super().__init__()
        self.trainer = None
        self.seen: list[tuple[int, bool]] = []

    def is_set(self) -> bool:
        self.seen.append((self.trainer.train_state.step, self.trainer.latest[0] is not None))
        return super().is_set()


def test_the_loss_is_known_from_the_first_logged_window(tmp_path):
    """The monitor showed '-' for the loss until iteration 2 x log_every: the first window was read one window late
    like every other (issue 12, point 5). Now it is read at once; later windows still stay one behind."""
    run = RunStore(tmp_path).create(tiny_config(epochs=1, log_every=4, channels_last="off"))
    probe = LossProbe()
    probe.trainer = Trainer(run, stop_event=probe)
    assert probe.trainer.run() == "finished"
    first = next(step for step, known in probe.seen if known)
    assert first == 4, probe.seen[:10]


def test_the_status_of_an_ended_run_names_its_last_logged_loss(tmp_path):
    """status.json kept the loss of the window before the last one (the monitor of a finished run showed epoch 1's
    loss 2.72 beside the chart's final 2.21): it is written again when an epoch ends and when a run stops."""
    run = RunStore(tmp_path).create(tiny_config(epochs=2, log_every=4, channels_last="off"))
    assert Trainer(run).run() == "finished"
    last = json.loads(run.path.joinpath("steps.jsonl").read_text().splitlines()[-1])
    status = json.loads(run.path.joinpath("status.json").read_text())
    assert (status["last_loss"], status["last_err"]) == pytest.approx((last["loss"], last["err"]), abs=1e-3)
