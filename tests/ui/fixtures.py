"""Hand-written run folders with fixed contents (no clock, no randomness) for the UI tests and snapshots.

Each folder is what the trainer would have written: config.json, status.json, epochs.jsonl, steps.jsonl,
events.log. Timestamps are fixed numbers; "running" runs are made live by holding their writer lock (as the
trainer does), so crash detection sees an owner.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from core.spec.config import RunConfig
from core.spec.presets import preset
from core.store.runs import Run
from core.util.files import atomic_write_bytes

HOST = "fixture-host"
T0 = 1_767_000_000.0  # a fixed creation time; nothing shows ages, only durations from status.json


def _curve(i: int, n: int, start: float, end: float, speed: float = 6.0) -> float:
    return end + (start - end) * math.exp(-speed * i / max(1, n))


def write_run(root: Path, run_id: str, cfg: RunConfig, state: str, *, epochs_done: int, ipe: int = 50,
              final_test: float = 10.0, order: int = 0, error: str | None = None, step: int | None = None,
              gap: float = 2.0, host: str = HOST, events: list[str] | None = None) -> Run:
    """One run folder with a smooth, fixed learning curve ending near ``final_test`` (% test error)."""
    path = Path(root) / run_id
    path.mkdir(parents=True)
    run = Run(path)
    atomic_write_bytes(run.config_path, cfg.to_json().encode())
    total_epochs = cfg.epochs
    total_steps = total_epochs * ipe
    step = epochs_done * ipe if step is None else step
    rows, steps = [], []
    for e in range(1, epochs_done + 1):
        train_err = _curve(e, total_epochs, 80.0, final_test - gap)
        test_err = _curve(e, total_epochs, 75.0, final_test) + (0.6 if e % 3 == 0 else 0.0)
        rows.append({"epoch": e, "step": e * ipe, "train_loss": round(train_err / 40, 4),
                     "train_err": round(train_err, 4), "test_loss": round(test_err / 35, 4),
                     "test_err": round(test_err, 4), "lr": 0.1 if e <= total_epochs // 2 else 0.01,
                     "seconds": 12.5, "images_per_s": 2048.0, "peak_mem_bytes": None})
    for s in range(10, step + 1, 10):
        base = _curve(s / ipe, total_epochs, 85.0, final_test - gap)
        wobble = 3.0 * math.sin(s * 0.7)
        steps.append({"step": s, "epoch": (s - 1) // ipe + 1, "loss": round((base + wobble) / 40, 4),
                      "err": round(base + wobble, 4), "lr": 0.1})
    run.epochs_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    run.steps_path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in steps))
    status = {"state": state, "created_at": T0 + order, "updated_at": T0 + order + 100, "started_at": T0 + order,
              "epoch": epochs_done, "step": step, "total_epochs": total_epochs, "total_steps": total_steps,
              "iters_per_epoch": ipe, "elapsed_s": 12.5 * epochs_done + 0.25 * (step - epochs_done * ipe),
              "images_per_s": 2048.0 if state in ("running", "paused") else None, "lr": 0.1, "last_loss": 0.42,
              "device": "cpu", "peak_mem_bytes": None, "host": host, "pid": 4242, "error": error}
    run.write_status(status)
    lines = events if events is not None else (
        [f"2026-01-01 12:00:00  created {cfg.label()}", "2026-01-01 12:00:01  started on cpu (fp32)"]
        + [f"2026-01-01 12:0{min(e, 9)}:00  checkpoint saved at epoch {e}, step {e * ipe}"
           for e in range(1, epochs_done + 1)][-3:]
        + ([f"2026-01-01 12:10:00  {state}" + (f": {error}" if error else "")] if state not in ("running",) else []))
    run.events_path.write_text("".join(line + "\n" for line in lines))
    if state in ("stopped", "finished") or epochs_done > 0:     # every epoch ends with one, as in a real run
        (path / "checkpoint.pt").write_bytes(b"fixture: not a real checkpoint")
    return run


def quick(**kw) -> RunConfig:
    return preset("quick").with_overrides(**kw)


def populate(root: Path) -> dict[str, Run]:
    """The standard fixture store: finished residual and plain nets, a running, a stopped, a failed run, damage."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    runs = {
        "r20-A": write_run(root, "r20-A", quick(depth=20, epochs=12), "finished", epochs_done=12,
                           final_test=8.4, order=1),
        "plain-20": write_run(root, "plain-20", quick(depth=20, shortcut="none", epochs=12), "finished",
                              epochs_done=12, final_test=9.9, order=2),
        "r56-A": write_run(root, "r56-A", quick(depth=56, epochs=12), "finished", epochs_done=12,
                           final_test=7.1, order=3),
        "plain-56": write_run(root, "plain-56", quick(depth=56, shortcut="none", epochs=12), "finished",
                              epochs_done=12, final_test=12.6, order=4, gap=1.0),
        "r110-stopped": write_run(root, "r110-stopped", quick(depth=110, epochs=12), "stopped", epochs_done=4,
                                  final_test=7.0, order=5, step=230),
        "r32-missing-data": write_run(root, "r32-missing-data", quick(depth=32, dataset="cifar10"), "failed",
                                      epochs_done=0, order=6,
                                      error="CIFAR-10 was not found in data/ and cannot be downloaded (no "
                                            "network). Fix: copy cifar-10-batches-py there or pass --data-dir"),
    }
    bad = root / "broken-run"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    return runs


def add_running(root: Path, run_id: str = "r44-live", order: int = 7) -> Run:
    """A run that is training right now (lock held by this process, like a trainer would)."""
    run = write_run(root, run_id, quick(depth=44, epochs=12), "running", epochs_done=5, final_test=7.5,
                    order=order, step=5 * 50 + 20, host=__import__("socket").gethostname())
    run.acquire_lock()
    return run
