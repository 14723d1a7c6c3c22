"""The ``gpu`` tier: each test asserts one thing about the CUDA paths that only a GPU can show (issue 19). Skipped
without CUDA; ``bench/gpu_checks.sh`` runs them first. The logic of each point is tested on the CPU elsewhere
(tests/core/train/test_gpu_paths.py, tests/core/serve/test_decisions.py).

Runs under pytest (``python -m pytest -m gpu tests/gpu``), or without it (a machine with torch alone):
``python tests/gpu/test_gpu.py`` runs every test and prints one line each.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.spec.config import RunConfig  # noqa: E402
from core.store.runs import RunStore  # noqa: E402
from core.train.device import is_out_of_memory, release_memory, resolve_precision  # noqa: E402
from core.train.events import Started  # noqa: E402
from core.train.models import cifar_resnet  # noqa: E402
from core.train.step import StepWindow  # noqa: E402
from core.train.trainer import Trainer, train_run  # noqa: E402
from tests.stopping import StopAfter  # noqa: E402

try:
    import pytest
except ImportError:              # run as a script on a machine without pytest
    pytest = None

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
if pytest is not None:
    pytestmark = [pytest.mark.gpu, pytest.mark.skipif(GPUS == 0, reason="needs a CUDA GPU")]


class Skip(Exception):
    pass


def need_gpus(n: int) -> None:
    if GPUS < n:
        why = f"needs {n} GPUs, {GPUS} here"
        if pytest is not None:
            pytest.skip(why)
        raise Skip(why)


def config(**overrides) -> RunConfig:
    base = dict(depth=8, width=4, dataset="synthetic", max_train_images=512, max_test_images=256, batch_size=64,
                epochs=2, iterations=0, milestones=(), schedule="constant", lr=0.05, device="cuda:0", log_every=2,
                precision="fp32", channels_last="off", download=False)
    return RunConfig(**{**base, **overrides})


def test_the_trainer_makes_the_runs_gpu_current(tmp_path):
    """cuda:N, N >= 1: events, empty_cache and library handles must belong to that GPU (issue 19.1)."""
    need_gpus(2)
    last = GPUS - 1
    current = []
    run = RunStore(tmp_path).create(config(device=f"cuda:{last}", epochs=1))
    Trainer(run, on_event=lambda e: current.append(torch.cuda.current_device()) if isinstance(e, Started) else None
            ).run()
    assert current == [last]


def test_a_window_on_cuda_1_is_read_after_its_copy_landed():
    """The window's event was recorded on cuda:0's stream while the copy ran on cuda:1's: read too early, zeros
    (issue 19.1). Here the values come out of a long kernel, and the window is read at once."""
    need_gpus(2)
    device = torch.device("cuda:1")      # not made current: the window must not depend on it
    window = StepWindow(4, device)
    a = torch.randn(4096, 4096, device=device)
    expected = []
    for step in range(4):
        for _ in range(20):
            a = torch.tanh(a @ a) + 1.0          # ~1 s of work queued before the copy
        loss = a.mean()
        window.put(loss, loss * 0 + step, step, 1, 64, 0.1)
        expected.append(loss)
    window.seal()
    rows = window.drain(keep=0)
    assert [r.loss for r in rows] == [float(v) for v in expected] and [r.wrong for r in rows] == [0, 1, 2, 3]


def test_losses_of_a_run_on_the_last_gpu_equal_those_on_the_first(tmp_path):
    """Every steps.jsonl point of a run on cuda:N (the first, read at once; the warm-up's; the epochs' last) equals
    the same deterministic run's on cuda:0 (issue 19.1)."""
    need_gpus(2)
    cfg = dict(deterministic=True, error_warmup="on", epochs=2)
    steps = []
    for index in (0, GPUS - 1):
        run, state = train_run(RunStore(tmp_path / str(index)), config(device=f"cuda:{index}", **cfg))
        assert state == "finished"
        steps.append([(r["step"], r["loss"]) for r in run.read_steps()])
    assert steps[0] == steps[1] and all(loss > 0 for _, loss in steps[0])


def test_peak_memory_is_per_epoch(tmp_path):
    """Each epoch reports its own peak, not the run's so far (issue 19.9): the first epoch allocates 1 GiB more."""
    import core.train.setup as setup_mod

    real, calls = setup_mod.create_model, []

    def resnet(*a, **kw):
        model = real(*a, **kw)

        def hook(module, args):
            calls.append(1)
            if len(calls) == 1:
                torch.empty(2**30, dtype=torch.uint8, device=args[0].device)
        model.register_forward_pre_hook(hook)
        return model
    setup_mod.create_model = resnet
    try:
        run, state = train_run(RunStore(tmp_path), config(epochs=2))
    finally:
        setup_mod.create_model = real
    assert state == "finished"
    first, second = run.read_epochs()
    assert first["peak_mem_bytes"] >= 2**30 > second["peak_mem_bytes"]
    assert all(e["reserved_mem_bytes"] >= e["peak_mem_bytes"] for e in (first, second))


def test_precision_auto_is_bf16_exactly_on_compute_capability_8_and_up():
    device = torch.device("cuda:0")
    native = torch.cuda.get_device_capability(device) >= (8, 0)
    assert resolve_precision("auto", device) == ("bf16" if native else "fp32")


def test_a_checkpoint_keeps_the_training_gpus_rng_state(tmp_path):
    """One state (the training GPU's), put back on resume (issue 19.2)."""
    from core.train.checkpoint import load_checkpoint

    run, state = train_run(RunStore(tmp_path), config(epochs=1, device=f"cuda:{GPUS - 1}"))
    rng = load_checkpoint(run.checkpoint_path)["rng"]["cuda"]
    assert isinstance(rng, torch.Tensor) and torch.equal(rng, torch.cuda.get_rng_state(GPUS - 1))


def test_pooling_is_deterministic_on_cuda():
    """x.mean((2, 3)) has a deterministic backward; adaptive_avg_pool2d's is not (issue 19.9)."""
    model = cifar_resnet(8, width=4).cuda()
    torch.use_deterministic_algorithms(True)
    try:
        model(torch.randn(8, 3, 32, 32, device="cuda")).sum().backward()
    finally:
        torch.use_deterministic_algorithms(False)


def test_memory_of_a_failed_step_goes_back_to_the_driver():
    """Out of memory is recognised, and after the except block release_memory returns what was held (19.4)."""
    torch.cuda.empty_cache()
    before = torch.cuda.memory_reserved()
    held = [torch.empty(2**30, dtype=torch.uint8, device="cuda")]
    try:
        held.append(torch.empty(2**50, dtype=torch.uint8, device="cuda"))
    except Exception as exc:  # noqa: BLE001 - what torch raises for an impossible size varies by version
        assert is_out_of_memory(exc)
    held.clear()
    release_memory(torch.device("cuda"))
    assert torch.cuda.memory_reserved() <= before


def test_cuda_graphs_train_what_eager_training_does():
    """--compile reduce-overhead (torch.compile with CUDA graphs) against the eager step, 5 steps of ResNet-20 at batch
    128 from the same weights and batches (issue 19.10)."""
    import torch._dynamo

    from core.data.cifar import load_data
    from core.train.setup import build

    cfg = config(depth=20, width=16, batch_size=128, max_train_images=1280, deterministic=False)
    data = load_data(cfg)
    runs = []
    for compiled in (False, True):
        torch._dynamo.reset()
        torch.manual_seed(0)
        s = build(cfg.with_overrides(compile="reduce-overhead" if compiled else "off"), torch.device("cuda:0"), data)
        losses = [float(s.step(x, y, 0.05, s.train_loader.last_total)[0]) for _, (x, y) in zip(range(5),
                                                                                               s.train_loader)]
        runs.append((losses, [p.detach().float().cpu() for p in s.model.parameters()]))
    (l0, p0), (l1, p1) = runs
    assert max(abs(a - b) for a, b in zip(l0, l1)) < 1e-3
    assert max(float((a - b).abs().max()) for a, b in zip(p0, p1)) < 1e-3


def test_cuda_graphs_train_and_resume_exactly(tmp_path):
    """A run with --compile reduce-overhead replays CUDA graphs (none skipped), compiles before its first step, and
    stopped mid-epoch then resumed ends with the weights and metrics of the uninterrupted run (issue 19.10)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    from core.train.checkpoint import load_checkpoint

    torch._dynamo.reset()
    counters.clear()
    cfg = config(compile="reduce-overhead", deterministic=True, max_train_images=500)   # 7 full batches, one of 52
    store = RunStore(tmp_path)
    ref, state = train_run(store, cfg.with_overrides(name="ref"))
    assert state == "finished", ref.read_status().get("error")
    assert counters["inductor"]["cudagraph_skips"] == 0, "torch skipped the CUDA graphs"
    status = ref.read_status()
    assert status["compiling"] is False and status["compile_s"] > 0
    cut = store.create(cfg.with_overrides(name="cut"))
    assert Trainer(cut, stop_event=StopAfter(5)).run() == "stopped"
    assert Trainer(cut).run() == "finished", cut.read_status().get("error")
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(cut.checkpoint_path)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    keep = ("epoch", "step", "train_loss", "train_err", "test_loss", "test_err")
    assert [{k: r[k] for k in keep} for r in ref.read_epochs()] == [{k: r[k] for k in keep} for r in cut.read_epochs()]
    assert ref.read_steps() == cut.read_steps()


def test_cuda_graphs_with_micro_batches_train_match_eager_and_resume_exactly(tmp_path):
    """--compile reduce-overhead --micro-batches 2 (issue 29.1): the slices run eager (a graph replay would free the
    first slice's gradients while they accumulate), so the run trains, matches the eager run and resumes exactly."""
    import torch._dynamo

    from core.train.checkpoint import load_checkpoint

    torch._dynamo.reset()
    cfg = config(compile="reduce-overhead", micro_batches=2, deterministic=True, max_train_images=512)
    store = RunStore(tmp_path)
    ref, state = train_run(store, cfg.with_overrides(name="ref"))
    assert state == "finished", ref.read_status().get("error")
    eager, state = train_run(store, cfg.with_overrides(name="eager", compile="off"))
    assert state == "finished", eager.read_status().get("error")
    for a, b in zip(ref.read_steps(), eager.read_steps()):
        assert abs(a["loss"] - b["loss"]) <= 1e-3 + 1e-2 * abs(b["loss"]), (a, b)
    cut = store.create(cfg.with_overrides(name="cut"))
    assert Trainer(cut, stop_event=StopAfter(3)).run() == "stopped"
    assert Trainer(cut).run() == "finished", cut.read_status().get("error")
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(cut.checkpoint_path)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_deterministic_run_on_cuda_meets_no_nondeterministic_op(tmp_path):
    """The trainer asks torch for deterministic algorithms with warn_only: every op a deterministic run uses must have
    a deterministic version on CUDA, or the run is not what it says (issue 29.6: NLLLoss's kernel)."""
    import warnings

    store = RunStore(tmp_path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run, state = train_run(store, config(deterministic=True, epochs=1))
    assert state == "finished", run.read_status().get("error")
    alerts = [str(w.message) for w in seen if "does not have a deterministic implementation" in str(w.message)]
    assert not alerts, alerts


def main() -> int:
    """Without pytest: every test, one line each; exit 1 when one failed."""
    failed = 0
    for name, fn in [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]:
        if GPUS == 0:
            print(f"SKIP {name}: needs a CUDA GPU")
            continue
        try:
            fn(Path(tempfile.mkdtemp())) if "tmp_path" in fn.__code__.co_varnames[:fn.__code__.co_argcount] else fn()
            print(f"PASS {name}")
        except Skip as exc:
            print(f"SKIP {name}: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported, then the next test
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
