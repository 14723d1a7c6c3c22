"""checkpoint.pt: one list of keys, a format checked on load with a readable failure, older format 1 resumed;
devices refused with a public error the trainer turns into a failed run."""
from __future__ import annotations

import pytest
import torch

from core.store.runs import RunStore
from core.train.checkpoint import CHECKPOINT_FORMAT, KEYS, load_checkpoint
from core.train.device import DeviceError, resolve_device
from core.train.state import TrainState
from core.train.trainer import Trainer, train_run
from tests.conftest import tiny_config
from tests.core.train.test_trainer import StopAfter


@pytest.fixture
def stopped(tmp_path):
    """A run stopped mid-epoch (step 5 of 8), its checkpoint on disk."""
    run = RunStore(tmp_path).create(tiny_config(epochs=1))
    assert Trainer(run, stop_event=StopAfter(5)).run() == "stopped"
    return run


def rewrite(run, change) -> None:
    ckpt = load_checkpoint(run.checkpoint_path)
    change(ckpt)
    torch.save(ckpt, run.checkpoint_path)


def test_checkpoint_holds_exactly_its_keys(stopped):
    ckpt = load_checkpoint(stopped.checkpoint_path)
    assert tuple(ckpt) == KEYS and ckpt["format"] == CHECKPOINT_FORMAT
    assert TrainState.from_dict(ckpt).step == 5


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(format=CHECKPOINT_FORMAT + 1), f"format {CHECKPOINT_FORMAT + 1}, newer than this ResLab"),
    (lambda c: c.update(format="x"), "format 'x', which this ResLab does not know"),
    (lambda c: c.pop("optimizer"), "checkpoint.pt lacks optimizer: it is damaged"),
])
def test_unknown_format_or_missing_keys_fail_readably(stopped, change, message):
    rewrite(stopped, change)
    assert Trainer(stopped).run() == "failed"
    error = stopped.read_status()["error"]
    assert message in error and error.endswith("the run cannot resume")
    assert "KeyError" not in error


def test_format_1_checkpoint_still_resumes(stopped):
    def to_format_1(c):
        sums, pending = c.pop("sums"), c.pop("pending")
        c.update(format=1, epoch_sums=[sums["loss_sum"], sums["wrong"], sums["images"]], window_rows=pending)
    rewrite(stopped, to_format_1)
    assert Trainer(stopped).run() == "finished"
    assert [r["epoch"] for r in stopped.read_epochs()] == [1]


def test_impossible_device_is_a_public_error_and_a_failed_run(tmp_path):
    for name in ("cuda:99", "tpu"):
        with pytest.raises(DeviceError):
            resolve_device(name)
    run, state = train_run(RunStore(tmp_path), tiny_config(device="cuda:99"))
    assert state == "failed"
    assert run.read_status()["error"].startswith("device cuda:99 asked for")
