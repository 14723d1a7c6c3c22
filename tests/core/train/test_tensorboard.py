"""TensorBoard event files hold the numbers of steps.jsonl/epochs.jsonl, one value per step across stop/resume."""
from __future__ import annotations

import threading

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli.main import main
from core.store.runs import RunStore
from core.train.events import EpochEnded
from core.train.tensorboard import DIR_NAME, TensorBoardLog
from core.train.trainer import Trainer
from tests.conftest import tiny_config
from tests.core.results_helpers import fake_run


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def assert_matches_jsonl(run, tb: dict[str, list[tuple[int, float]]]) -> None:
    steps, epochs = run.read_steps(), run.read_epochs()
    for key, tag in (("err", "train/err"), ("loss", "train/loss"), ("lr", "train/lr")):
        assert [s for s, _ in tb[tag]] == [r["step"] for r in steps], tag      # each step once, in order
        assert [v for _, v in tb[tag]] == pytest.approx([r[key] for r in steps], rel=1e-6), tag
    for key in ("train_err", "test_err", "test_loss", "lr"):
        assert tb[f"epoch/{key}"] == [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in epochs], key


def test_a_resumed_session_purges_what_a_crashed_one_wrote_past_its_checkpoint(tmp_path):
    log = TensorBoardLog(tmp_path, 0)
    log.steps([{"step": s, "err": 100.0 - s, "loss": 1.0, "lr": 0.1} for s in (5, 10, 15, 20, 25, 30)])
    log.epoch({"step": 20, "test_err": 50.0})
    log.close()                                   # the checkpoint was at step 20; steps 25 and 30 were orphaned
    log = TensorBoardLog(tmp_path, 20)
    log.steps([{"step": s, "err": 1.0 * s, "loss": 1.0, "lr": 0.1} for s in (25, 30, 35, 40)])
    log.epoch({"step": 40, "test_err": 40.0})
    log.close()
    tb = scalars(tmp_path)
    assert tb["train/err"] == [(5, 95.0), (10, 90.0), (15, 85.0), (20, 80.0), (25, 25.0), (30, 30.0), (35, 35.0),
                               (40, 40.0)]
    assert tb["epoch/test_err"] == [(20, 50.0), (40, 40.0)]


def test_trainer_writes_events_once_per_step_across_stop_crash_and_resume(tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = tiny_config(epochs=3, max_train_images=128, max_test_images=64, log_every=2, tensorboard=True,
                      channels_last="off")           # 4 iterations per epoch
    run = store.create(cfg)
    stop = threading.Event()

    def stop_after_first_epoch(event):
        if isinstance(event, EpochEnded) and event.row["epoch"] == 1:
            stop.set()

    assert Trainer(run, on_event=stop_after_first_epoch, stop_event=stop).run() == "stopped"
    ckpt_step = run.info().step
    # what a process killed after a flush would leave: events past its checkpoint, which the resume rewrites
    orphan = TensorBoardLog(run.path / DIR_NAME, ckpt_step)
    orphan.steps([{"step": ckpt_step + 2, "err": 99.0, "loss": 9.0, "lr": 9.0}])
    orphan.epoch({"step": ckpt_step + 4, "test_err": 99.0, "train_err": 99.0, "test_loss": 9.0, "lr": 9.0})
    orphan.close()
    assert Trainer(run).run() == "finished"
    tb = scalars(run.path / DIR_NAME)
    assert len(run.read_epochs()) == 3 and len(tb["epoch/test_err"]) == 3
    assert_matches_jsonl(run, tb)


def test_report_tensorboard_converts_runs_after_the_fact(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    run = fake_run(store, [30.0, 20.0])
    assert not (run.path / DIR_NAME).exists()
    args = ["report", run.id, "--tensorboard", "--no-layer-responses", "--format", "csv", "--out", tmp_path / "rep"]
    for _ in range(2):                            # converting twice replaces the events instead of doubling them
        assert main([*map(str, args), "--runs-dir", str(store.root)]) == 0
    assert "TensorBoard: wrote" in capsys.readouterr().out
    assert_matches_jsonl(run, scalars(run.path / DIR_NAME))


def test_resume_with_tensorboard_writes_the_steps_so_far_first(tmp_path, capsys):
    store = RunStore(tmp_path / "runs")
    run = store.create(tiny_config(epochs=2, max_train_images=64, max_test_images=32, log_every=1,
                                   channels_last="off"))
    stop = threading.Event()
    assert Trainer(run, on_event=lambda e: isinstance(e, EpochEnded) and stop.set(), stop_event=stop).run() == \
        "stopped"
    assert not (run.path / DIR_NAME).exists()
    assert main(["resume", run.id, "--tensorboard", "--runs-dir", str(store.root)]) == 0
    assert run.read_config().tensorboard and "finished" in capsys.readouterr().out
    assert_matches_jsonl(run, scalars(run.path / DIR_NAME))
