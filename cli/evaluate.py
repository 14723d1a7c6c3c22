"""`eval RUN`: test loss and error of a run's saved weights (checkpoint.pt, and best.pt where present).

Uses the engine's own set-up (``core.train.setup.build``, as the trainer does) and ``core.train.step.evaluate``, with
the normalisation statistics of the run's training images, so the figures are those the trainer would report for the
same weights (in fp32; a bf16 run's own figures can differ in the last digits).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, CliError
from core.store.runs import Run
from core.util.formatting import first_line


def evaluate_run(run: Run, data_dir: str | None = None, device: str = "auto", batch_size: int = 500,
                 as_json: bool = False, out=None) -> int:
    """Evaluate what can be evaluated: a weights file that cannot be loaded is reported (one line) and the other
    is still evaluated; exit 1 only when none could be."""
    out = out or sys.stdout
    info = run.info()
    if info.config is None:
        raise CliError(f"run {run.id} is damaged ({info.error}); nothing to evaluate", EXIT_FAILED)
    cfg = info.config
    weights = [p for p in (run.checkpoint_path, run.best_path) if os.path.lexists(p)]
    if not weights:
        raise CliError(f"run {run.id} has no checkpoint yet (no epoch finished or stop saved); nothing to evaluate",
                       EXIT_FAILED)

    from core.data.datasets import DataError
    from core.train.checkpoint import load_checkpoint
    from core.train.device import DeviceError, resolve_device
    from core.train.setup import build
    from core.train.step import evaluate

    try:
        dev = resolve_device(device)
    except DeviceError as exc:
        raise CliError(f"--device: {exc}") from None
    if data_dir:
        cfg = cfg.with_overrides(data_dir=str(Path(data_dir).expanduser().resolve()))
    try:
        setup = build(cfg, dev, train=False, channels_last=False, eval_batch=batch_size)
    except DataError as exc:
        raise CliError(f"--data-dir: {exc}") from None
    model, loader, data = setup.model, setup.test_loader, setup.data
    rows = {row.get("epoch"): row for row in info.epochs}   # [] when epochs.jsonl is damaged: no recorded column
    results: list[dict[str, Any]] = []
    for path in weights:
        try:
            ckpt = load_checkpoint(path)
            state = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
            model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: say so, evaluate the other one
            results.append({"weights": path.name, "error": f"cannot be loaded ({type(exc).__name__}: "
                                                           f"{first_line(exc, 160)})"})
            continue
        loss, err = evaluate(model, loader)
        epoch, step = (v if isinstance(v, int) else None for v in (ckpt.get("epoch"), ckpt.get("step")))
        row = rows.get(epoch)
        # the trainer's own figure for these weights: only when they were saved at that epoch's end (not mid-epoch)
        same = row is not None and (step is None or row.get("step") == step)
        results.append({"weights": path.name, "epoch": epoch, "step": step, "test_loss": loss, "test_err": err,
                        "recorded_test_err": row.get("test_err") if same else None})
    code = EXIT_OK if any("error" not in r for r in results) else EXIT_FAILED
    if as_json:
        json.dump({"run": run.id, "images": loader.num_samples, "device": str(dev), "results": results}, out,
                  indent=1, default=str)
        out.write("\n")
        return code
    from core.util.formatting import num, pct

    out.write(f"eval {run.id}: {loader.num_samples} test images of {data.name} ({data.source}) on {dev}\n")
    out.write(f"{'weights':<14}{'epoch':>6}{'test loss':>11}{'test err':>10}{'recorded':>10}\n")
    for r in results:
        if "error" in r:
            out.write(f"{r['weights']:<14}{r['error']}\n")
            continue
        out.write(f"{r['weights']:<14}{str(r['epoch']):>6}{num(r['test_loss']):>11}{pct(r['test_err']):>10}"
                  f"{pct(r['recorded_test_err']):>10}\n")
    out.flush()
    return code


def show_layer_responses(run: Run, data_dir: str | None = None, device: str = "auto", as_json: bool = False,
                         out=None) -> int:
    """`eval RUN --layer-responses`: the std of each 3x3 layer's response (computed once, kept in the run folder)."""
    from core.results.responses import FILE_NAME, layer_responses
    from core.train.device import DeviceError, resolve_device
    from core.util.errors import ReportError

    out = out or sys.stdout
    try:
        resolve_device(device)
    except DeviceError as exc:
        raise CliError(f"--device: {exc}") from None
    try:
        data = layer_responses(run, device=device, data_dir=data_dir)
    except ReportError as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    if as_json:
        json.dump(data, out, indent=1)
        out.write("\n")
        return EXIT_OK
    out.write(f"layer responses of {run.id} ({data['weights']}, epoch {data['epoch']}, step {data['step']}): std over "
              f"{data['images']} test images, after BN and before the addition and ReLU; kept in {FILE_NAME}\n")
    out.write(f"{'layer':>5}  {'module':<18}{'std':>9}\n")
    for layer in data["layers"]:
        out.write(f"{layer['index']:>5}  {layer['name']:<18}{layer['std']:>9.4f}\n")
    out.flush()
    return EXIT_OK
