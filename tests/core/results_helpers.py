"""Run folders with chosen numbers (no training): for the results tests, where exact figures matter."""
from __future__ import annotations

from core.store.runs import Run, RunStore
from tests.conftest import tiny_config


def fake_run(store: RunStore, finals: list[float], *, depth: int = 20, shortcut: str = "A", seed: int = 0,
             state: str = "finished", total_epochs: int | None = None, ipe: int = 10, log_every: int = 5,
             env: dict | None = None, data: dict | None = None, **cfg) -> Run:
    """A run whose epochs end with test errors ``finals`` (one epoch each) and a falling training error; ``data``:
    the identity its trainer would have recorded (core/data/identity.py)."""
    total = total_epochs or len(finals)
    run = store.create(tiny_config(depth=depth, shortcut=shortcut, seed=seed, epochs=total, log_every=log_every,
                                   **cfg))
    steps = []
    for s in range(log_every, len(finals) * ipe + 1, log_every):
        steps.append({"step": s, "epoch": (s - 1) // ipe + 1, "loss": 2.0 - s / 100, "err": 90.0 - s - seed,
                      "lr": 0.1})
    run.append_steps(steps)
    for e, err in enumerate(finals, 1):
        run.append_epoch({"epoch": e, "step": e * ipe, "train_loss": 1.0, "train_err": 50.0 - e,
                          "test_loss": 1.1, "test_err": err, "lr": 0.1, "seconds": 1.0})
    run.update_status(state=state, epoch=len(finals), step=len(finals) * ipe, total_epochs=total,
                      total_steps=total * ipe, elapsed_s=12.0,
                      env=env or {"torch": "2.x", "python": "3.11", "device": "cpu", "git_commit": "abc123"},
                      **({"data": data} if data else {}))
    return run
