"""precision auto on the CPU (core/train/precision.py): bf16 only where the CPU computes in it and a probe finds it
faster, fp32 otherwise, with the reason in events.log and `show`; a bf16 CPU run resumes exactly and keeps batch-norm
statistics and the optimizer state in fp32.

This machine's CPU may lack bf16 hardware: the decision is tested by injecting the detection and the probe."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

import core.train.precision as P
from cli.tables import render_show, show_data
from core.store.runs import RunStore
from core.train.checkpoint import load_checkpoint
from core.train.trainer import Trainer, train_run
from tests.conftest import tiny_config
from tests.stopping import StopAfter

CPU = torch.device("cpu")
NO = (False, "this CPU does not compute in bf16 (no amx_bf16, avx512_bf16 or Arm bf16)")
YES = (True, "this CPU computes in bf16 (amx_bf16)")


@pytest.fixture
def probing(monkeypatch, tmp_path):
    """precision auto may probe (the suite turns it off), its answers cached in this test's own folder, and the
    probe's measurements are counted."""
    monkeypatch.delenv(P.CPU_BF16_ENV, raising=False)
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def answer(choice):
        def fake(model, device, batch_size, budget_s=P.PROBE_BUDGET_S):
            calls.append(batch_size)
            return choice, f"measured fp32 10.0 ms, bf16 {5.0 if choice == 'bf16' else 12.0} ms per step"
        monkeypatch.setattr(P, "measure_bf16", fake)
    return answer, calls


def model():
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))


def write_cpuinfo(tmp_path: Path, line: str) -> Path:
    path = tmp_path / f"cpuinfo{len(list(tmp_path.iterdir()))}"
    path.write_text(f"processor\t: 0\nvendor_id\t: X\n{line}\n\nprocessor\t: 1\n{line}\n")
    return path


def test_flags_of_x86_and_arm_cpus(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    amx = write_cpuinfo(tmp_path, "flags\t\t: fpu sse avx2 avx512f amx_bf16 amx_tile")
    assert P.cpu_bf16_hardware(amx) == (True, "this CPU computes in bf16 (amx_bf16)")
    arm = write_cpuinfo(tmp_path, "Features\t: fp asimd sve bf16 i8mm")
    assert P.cpu_bf16_hardware(arm)[0]
    epyc = write_cpuinfo(tmp_path, "flags\t\t: fpu sse avx2 avx512f avx512bw")     # AVX512 without BF16: emulated
    assert P.cpu_bf16_hardware(epyc) == NO
    assert P.cpu_bf16_hardware(tmp_path / "missing") == NO
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    has, why = P.cpu_bf16_hardware(amx)
    assert not has and "oneDNN does not support bf16" in why


def test_the_real_detection_says_no_on_a_cpu_without_bf16():
    if P.cpu_flags() & set(P.BF16_FLAGS):
        pytest.skip("this CPU has bf16 hardware")
    has, why = P.cpu_bf16_hardware()
    assert not has and "does not compute in bf16" in why
    precision, note = P.choose_precision(tiny_config(precision="auto"), model(), CPU)
    assert precision == "fp32" and note == f"precision: fp32 (auto: {NO[1]}; bf16 would be emulated and slower)"


def test_auto_without_bf16_hardware_stays_fp32_unmeasured(monkeypatch, probing):
    answer, calls = probing
    answer("bf16")
    monkeypatch.setattr(P, "cpu_bf16_hardware", lambda: NO)
    precision, note = P.choose_precision(tiny_config(precision="auto"), model(), CPU)
    assert precision == "fp32" and "does not compute in bf16" in note and calls == []


@pytest.mark.parametrize("probe", ["bf16", "fp32"])
def test_auto_with_bf16_hardware_takes_the_probes_answer_and_caches_it(monkeypatch, probing, probe):
    answer, calls = probing
    answer(probe)
    monkeypatch.setattr(P, "cpu_bf16_hardware", lambda: YES)
    cfg = tiny_config(precision="auto")
    precision, note = P.choose_precision(cfg, model(), CPU)
    assert precision == probe and note.startswith(f"precision: {probe} (auto: {YES[1]}; measured fp32 10.0 ms")
    assert calls == [cfg.batch_size]
    precision, note = P.choose_precision(cfg, model(), CPU)         # the same machine and model: from the cache
    assert precision == probe and "measured on this machine before" in note and len(calls) == 1
    precision, _ = P.choose_precision(cfg.with_overrides(depth=14), model(), CPU)    # another shape: measured
    assert precision == probe and len(calls) == 2


def test_auto_is_not_measured_when_deterministic_turned_off_or_not_training(monkeypatch, probing):
    answer, calls = probing
    answer("bf16")
    monkeypatch.setattr(P, "cpu_bf16_hardware", lambda: YES)
    precision, note = P.choose_precision(tiny_config(precision="auto", deterministic=True), model(), CPU)
    assert precision == "fp32" and "not measured under --deterministic" in note
    assert P.choose_precision(tiny_config(precision="auto"), model(), CPU, measure=False) == ("fp32", "")
    monkeypatch.setenv(P.CPU_BF16_ENV, "off")
    precision, note = P.choose_precision(tiny_config(precision="auto"), model(), CPU)
    assert precision == "fp32" and "$RESLAB_CPU_BF16=off" in note and calls == []


def test_bf16_asked_for_on_a_cpu_that_emulates_it_warns(monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_hardware", lambda: NO)
    precision, note = P.choose_precision(tiny_config(precision="bf16"), model(), CPU)
    assert precision == "bf16" and note.startswith("warning: bf16 on this CPU is emulated and slower than fp32")
    monkeypatch.setattr(P, "cpu_bf16_hardware", lambda: YES)
    assert P.choose_precision(tiny_config(precision="bf16"), model(), CPU) == ("bf16", "")
    assert P.choose_precision(tiny_config(precision="fp32"), model(), CPU) == ("fp32", "")


def test_the_real_probe_times_both_precisions():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    choice, detail = P.measure_bf16(net, CPU, 64, budget_s=0.5)
    assert choice in ("fp32", "bf16") and "per step of 16 images" in detail and "measured fp32" in detail
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "the probe trains copies"
    assert torch.equal(rng, torch.get_rng_state())


def test_a_run_says_which_precision_and_why_in_events_and_show(tmp_path, monkeypatch, probing):
    answer, _ = probing
    answer("bf16")
    monkeypatch.setattr(P, "cpu_bf16_hardware", lambda: YES)
    # channels_last off: its own probe (real timings) would add ", channels_last" to the line when it wins
    run, state = train_run(RunStore(tmp_path), tiny_config(precision="auto", epochs=1, channels_last="off"))
    assert state == "finished"
    events = "\n".join(run.read_events())
    assert "(bf16), " in events and f"precision: bf16 (auto: {YES[1]}; measured fp32 10.0 ms" in events
    assert run.read_status()["precision"] == "bf16"
    out = io.StringIO()
    render_show(show_data(run, run.info()), out)
    assert f"precision bf16 (auto: {YES[1]}; measured fp32 10.0 ms" in out.getvalue()


def bf16_config(**overrides):
    return tiny_config(precision="bf16", epochs=2, deterministic=True, augment=True, log_every=3,
                       optimizer="nesterov", weight_decay=5e-4, **overrides)


@pytest.mark.parametrize("stop_at", [5, 8])
def test_bf16_cpu_run_resumes_exactly_with_fp32_state(tmp_path, stop_at):
    store = RunStore(tmp_path)
    ref, state = train_run(store, bf16_config(name="ref"))
    assert state == "finished"
    run = store.create(bf16_config(name="cut"))
    assert Trainer(run, stop_event=StopAfter(stop_at)).run() == "stopped"
    cut = load_checkpoint(run.checkpoint_path)
    assert cut["precision"] == "bf16"
    tensors = [*cut["model"].items(), *((f"momentum {i}", s["momentum_buffer"])
                                        for i, s in cut["optimizer"]["state"].items())]
    floats = [(k, v.dtype) for k, v in tensors if v.is_floating_point()]
    assert any("running_var" in k for k, _ in floats) and len(floats) > 10
    assert all(dtype == torch.float32 for _, dtype in floats), floats
    assert Trainer(run).run() == "finished"
    a, b = load_checkpoint(ref.checkpoint_path), load_checkpoint(run.checkpoint_path)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert ref.read_epochs()[-1]["test_err"] == run.read_epochs()[-1]["test_err"]
    assert ref.read_steps() == run.read_steps()
    assert all(isinstance(s["loss"], float) for s in run.read_steps())


def test_a_resumed_run_keeps_its_precision_whatever_the_probe_says_now(tmp_path, monkeypatch, probing):
    answer, calls = probing
    answer("bf16")
    monkeypatch.setattr(P, "cpu_bf16_hardware", lambda: YES)
    run = RunStore(tmp_path).create(tiny_config(precision="auto", name="flip"))
    assert Trainer(run, stop_event=StopAfter(5)).run() == "stopped"
    assert load_checkpoint(run.checkpoint_path)["precision"] == "bf16"
    answer("fp32")
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(tmp_path / "other-cache"))      # a probe would now say fp32
    assert Trainer(run).run() == "finished"
    status = run.read_status()
    assert status["precision"] == "bf16" and len(calls) == 1
    assert status["precision_note"].startswith(f"precision: bf16 (auto: {YES[1]}; measured"), "kept from the start"
