"""--compile: the model compiles once; the last partial batch of each epoch runs eagerly (no recompile)."""
from __future__ import annotations

import pytest

from core.store.runs import RunStore
from core.train.trainer import train_run
from tests.conftest import tiny_config


@pytest.mark.slow
def test_compiled_run_compiles_once_and_reports_compile_time(tmp_path):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    # 250 images at batch 32: 7 full batches and one of 26 in each epoch
    run, state = train_run(RunStore(tmp_path), tiny_config(epochs=2, compile=True, max_train_images=250))
    assert state == "finished", run.read_status().get("error")
    assert counters["frames"]["total"] == 1 and counters["stats"]["unique_graphs"] == 1
    assert "torch.compile took" in "\n".join(run.read_events())
    assert len(run.read_epochs()) == 2
