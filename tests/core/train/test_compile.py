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


@pytest.mark.slow
def test_a_compiled_step_computes_what_the_eager_step_does():
    """The graphs compile mode (CUDA graphs through mode reduce-overhead; off the GPU the same compile as the default
    mode, so one test covers both here; tests/gpu compares graphs on a GPU) trains the same weights as the eager
    step, up to the order of float sums."""
    mode = "graphs"
    import torch
    import torch._dynamo

    from core.data.cifar import load_data
    from core.train.setup import build

    torch._dynamo.reset()
    cfg = tiny_config(compile=True, channels_last="off", max_train_images=64)
    data = load_data(cfg)
    weights = []
    for compiled in (False, True):
        torch.manual_seed(0)
        s = build(cfg.with_overrides(compile=compiled), torch.device("cpu"), data, compile_mode=mode)
        for _, (x, y) in zip(range(2), s.train_loader):
            loss, wrong = s.step(x, y, 0.05, s.train_loader.last_total)
        assert (s.step.compiled is not None) is compiled
        weights.append((float(loss), int(wrong), [p.detach().clone() for p in s.model.parameters()]))
    (l0, w0, p0), (l1, w1, p1) = weights
    assert l0 == pytest.approx(l1, abs=1e-5) and w0 == w1
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(p0, p1))
