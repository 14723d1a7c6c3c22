"""channels_last "auto" on the CPU: a small probe, measured once per machine, device and model shape (issue 12, 7)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from core.spec.presets import preset
from core.train.memory_format import CACHE_FILE, choose_channels_last
from core.train.models import cifar_resnet


def counting(model: torch.nn.Module) -> list[int]:
    """Batch sizes of every forward pass through ``model`` and its copies (deepcopy keeps the hook)."""
    seen: list[int] = []
    model.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    return seen


def test_cpu_probe_runs_a_few_small_steps_once_then_reads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(tmp_path))
    cfg = preset("he2016", depth=20, width=8, channels_last="auto")          # batch 128
    model = cifar_resnet(20, width=8)
    seen = counting(model)
    choice, note = choose_channels_last(cfg, model, torch.device("cpu"), "fp32")
    # it once timed 12 full batches (1,536 images: 10-40 s for deep nets on a CPU); now at most 8 steps of 16
    assert seen and max(seen) <= 16 and sum(seen) <= 8 * 16, seen
    assert "measured" in note and f"channels_last {'on' if choice else 'off'}" in note
    cache = Path(os.environ["RESLAB_CACHE_DIR"]) / CACHE_FILE
    (entry,) = json.loads(cache.read_text()).values()
    assert entry["channels_last"] == choice

    seen.clear()
    again, note = choose_channels_last(cfg, model, torch.device("cpu"), "fp32")
    assert again == choice and seen == [] and "cached" in note
    seen.clear()                                                      # another shape is measured anew
    choose_channels_last(cfg.with_overrides(depth=8), cifar_resnet(8, width=8), torch.device("cpu"), "fp32")
    assert len(json.loads(cache.read_text())) == 2


def test_a_broken_cache_file_is_measured_over(tmp_path, monkeypatch):
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(tmp_path))
    cache = Path(os.environ["RESLAB_CACHE_DIR"]) / CACHE_FILE
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("{ not json")
    model = cifar_resnet(8, width=4)
    seen = counting(model)
    choice, note = choose_channels_last(preset("quick", depth=8, width=4), model, torch.device("cpu"), "fp32")
    assert seen and "measured" in note and isinstance(json.loads(cache.read_text()), dict)


def test_auto_does_not_measure_a_model_whose_channels_last_backward_hangs_on_the_cpu(tmp_path, monkeypatch):
    """A 1x1 stride-2 convolution of fewer than 8 channels in channels_last hangs (two threads) or crashes (one) in
    PyTorch's CPU backward: the lab-report sweep at widths 4,8,16 with shortcut B hung in this probe."""
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(tmp_path))
    model = cifar_resnet(8, "B", width=4)
    seen = counting(model)
    choice, note = choose_channels_last(preset("quick", depth=8, width=4, shortcut="B"), model,
                                        torch.device("cpu"), "fp32")
    assert (choice, seen) == (False, []) and "not measured: PyTorch's CPU convolutions hang" in note, note
    wide = cifar_resnet(8, "B", width=8)                     # 8 channels and more: measured as before
    seen = counting(wide)
    choose_channels_last(preset("quick", depth=8, width=8, shortcut="B"), wide, torch.device("cpu"), "fp32")
    assert seen


def test_channels_last_on_trains_such_a_model_contiguous_on_the_cpu_and_says_so(tmp_path):
    from tests.cli.test_cli import TINY, cli

    res = cli("train", *TINY, "--shortcut", "B", "--epochs", "1", "--channels-last", "on", runs=tmp_path / "runs",
              timeout=120)                                   # it hung here before
    assert res.returncode == 0, res.stderr
    assert "memory format: channels_last off, as it must be here: PyTorch's CPU convolutions hang" in res.stdout
