"""Layer responses (He et al. 2016, sec. 4.2, Fig. 7): how strongly each 3x3 layer responds, over the test set.

"The responses are the outputs of each 3x3 layer, after BN and before other nonlinearity (ReLU/addition)": in
``core.train.models`` these are the outputs of the batch norms that follow a 3x3 convolution (the stem's ``bn1`` and the
``bn1``/``bn2`` of every block; option B's projection BN is a 1x1 layer and is left out). Forward hooks on those
modules collect, over every test image, the standard deviation of all response values (images x channels x
positions, population std, accumulated in float64), with the model in eval mode (running BN statistics).

Only for ``arch`` "resnet": the pre-activation and wide nets put batch norm before each convolution, so their 3x3
layers have no "output after BN" (He et al. 2016b and the WRN paper show no such figure); ``layer_responses`` says so.

``layer_responses(run)`` computes this once from the run's ``checkpoint.pt`` and keeps it in
``layer_responses.json`` in the run folder; it is recomputed only when the checkpoint changes.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.results.response_file import FILE_NAME, _stamp, read_layer_responses  # (its reader: no torch)
from core.store.runs import Run
from core.util.errors import ReportError
from core.util.files import atomic_write_json

DEFINITION = ("population std over all test images, channels and positions of each 3x3 layer's output after "
              "batch norm, before the shortcut addition and the ReLU (He et al. 2016, Fig. 7)")


def response_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every batch norm that follows a 3x3 convolution, in forward order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, nn.BatchNorm2d) and "shortcut" not in name.split(".")]


class _Moments:
    """Count, mean and sum of squared deviations, merged batch by batch (Chan et al.), in float64."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().double()
        n = x.numel()
        mean = float(x.mean())
        m2 = float(((x - mean) ** 2).sum())
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    @property
    def std(self) -> float:
        return (self.m2 / self.n) ** 0.5 if self.n else float("nan")


@torch.no_grad()
def layer_response_std(model: nn.Module, batches: Iterable) -> list[dict[str, Any]]:
    """[{index, name, std}] for each 3x3 layer of ``model`` over ``batches`` (tensors or (x, y) pairs)."""
    layers = response_layers(model)
    moments = [_Moments() for _ in layers]
    hooks = [m.register_forward_hook(lambda _m, _i, out, acc=acc: acc.add(out)) for (_, m), acc in
             zip(layers, moments)]
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return [{"index": i + 1, "name": name, "std": acc.std} for i, ((name, _), acc) in enumerate(zip(layers,
                                                                                                    moments))]




def _load_weights(run: Run, cfg, model, ckpt) -> None:
    """checkpoint.pt's weights into ``model``; ReportError (that run left out, with why) for a checkpoint of another
    net or not ResLab's: a foreign or mismatched checkpoint never aborts a report of every run (issue 35)."""
    from core.store.checkpoint_check import differences

    saved = ckpt.get("config") if isinstance(ckpt, dict) else None
    must = differences(cfg, saved)[0] if isinstance(saved, dict) else []
    if must:
        raise ReportError(f"run {run.id}: checkpoint.pt was saved with other settings than config.json "
                          f"({'; '.join(must[:3])}); `resume --repair` puts them back")
    try:
        weights = ckpt["model"]
        model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in weights.items()})
    except Exception as exc:  # noqa: BLE001 - RuntimeError (another net), TypeError/KeyError (not a checkpoint)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ReportError(f"run {run.id}: checkpoint.pt does not fit its net ({type(exc).__name__}"
                          f"{': ' + first[:120] if first else ''})") from None


def layer_responses(run: Run, *, device: str = "auto", data_dir: str | None = None,
                    recompute: bool = False) -> dict:
    """The layer responses of ``run``'s checkpoint.pt: read from layer_responses.json, or computed and stored there.

    Raises ReportError when the run has no checkpoint, its data set cannot be read, or the device is unusable."""
    if not run.checkpoint_path.is_file():
        raise ReportError(f"run {run.id} has no checkpoint.pt yet (no epoch finished): no layer responses")
    if not recompute:
        cached = read_layer_responses(run)
        if cached is not None:
            return cached
    from core.data.datasets import DataError
    from core.train.checkpoint import load_checkpoint
    from core.train.device import DeviceError, resolve_device
    from core.train.setup import build

    try:
        cfg = run.read_config()
    except (OSError, ValueError) as exc:
        raise ReportError(f"run {run.id}: config.json is unreadable ({exc})") from None
    if cfg.arch != "resnet":
        raise ReportError(f"run {run.id}: layer responses (Fig. 7) are the outputs after the batch norm that follows "
                          f"each 3x3 layer of the original ResNet; a {cfg.arch} net normalises before its convolutions "
                          f"(pre-activation), so it has no such outputs")
    # never a download for a figure: the data set is where the run read it, or where the caller says
    cfg = cfg.with_overrides(download=False, **({"data_dir": str(Path(data_dir).expanduser().resolve())}
                                                if data_dir else {}))
    try:
        dev = resolve_device(device)
    except DeviceError as exc:
        raise ReportError(f"device {exc}") from None
    stamp = _stamp(run.checkpoint_path)
    try:
        ckpt = load_checkpoint(run.checkpoint_path)
    except Exception as exc:  # noqa: BLE001 - a torn or foreign file
        raise ReportError(f"run {run.id}: checkpoint.pt cannot be loaded ({type(exc).__name__}: {exc})") from None
    try:
        setup = build(cfg, dev, train=False, channels_last=False)
    except DataError as exc:
        reason = str(exc).split(". ")[0]      # 'CIFAR-10 was not found in DIR' (the rest: how to put it there)
        raise ReportError(f"run {run.id}: {reason}; give the folder holding it (--data-dir DIR)") from None
    model = setup.model
    _load_weights(run, cfg, model, ckpt)
    t0 = time.monotonic()
    layers = layer_response_std(model, setup.test_loader)
    data = {"run": run.id, "definition": DEFINITION, "weights": "checkpoint.pt", "epoch": ckpt.get("epoch"),
            "step": ckpt.get("step"), "images": setup.test_loader.num_samples, "device": str(dev),
            "seconds": round(time.monotonic() - t0, 3), "checkpoint": stamp, "layers": layers}
    atomic_write_json(run.path / FILE_NAME, data)
    return data
