"""`resume --repair`: rebuild what a damaged run folder lost from its checkpoint.pt.

checkpoint.pt holds everything an exact resume needs (core/train/checkpoint.py), the run's settings included; the other
files can be rebuilt from it or cut back to it: status.json (rewritten as a run stopped at the checkpoint),
config.json (from the checkpoint's copy when unreadable), epochs.jsonl and steps.jsonl (lines that are not what
ResLab writes are dropped, and so is what lies beyond the checkpoint). Rows the damage destroyed stay lost; the
training itself resumes exactly. Files that are links or folders are not removed: the user removes them.
"""
from __future__ import annotations

import os
import socket

from core.spec.config import RunConfig
from core.store import reader
from core.store.runs import STATES, Run, RunError, now
from core.train import checkpoint
from core.train.state import TrainState
from core.util.files import MAX_ROWS_BYTES, atomic_write_bytes, size_text
from core.util.formatting import first_line, pct


def repair(run: Run) -> list[str]:
    """Repair ``run`` (whose writer lock the caller holds) from its checkpoint; returns what was done, one note per
    file. Raises RunError when there is nothing sound to rebuild from."""
    if not run.holds_lock:
        raise RunError(f"repairing run {run.id} needs its writer lock")
    why = reader.folder_problem(run.path)
    if why:
        raise RunError(why)
    if not run.checkpoint_path.exists():
        return start_over(run)
    try:
        ckpt = checkpoint.read_resumable(run.checkpoint_path)
        state = TrainState.from_dict(ckpt)
    except Exception as exc:  # noqa: BLE001 - whatever is wrong with it, there is nothing to rebuild from
        raise RunError(f"checkpoint.pt cannot be read ({first_line(exc) or type(exc).__name__})") from None
    notes = _move_aside_too_large(run)
    try:
        cfg = run.read_config()
    except (OSError, ValueError):
        try:
            cfg = RunConfig.from_dict(ckpt["config"], strict=False)
        except (TypeError, ValueError) as exc:
            raise RunError(f"config.json is damaged and checkpoint.pt's copy is unreadable ({exc})") from None
        atomic_write_bytes(run.config_path, cfg.to_json().encode())
        notes.append("config.json rebuilt from checkpoint.pt")
    for name, n in run.truncate_logs(state.epoch, state.step).items():
        notes.append(f"{name}: dropped {n} unreadable line{'s' if n != 1 else ''}")
    lost = state.epoch - len(run.read_epochs())
    if lost > 0:
        notes.append(f"epochs.jsonl lacks {lost} of the {state.epoch} epochs checkpoint.pt covers (their figures "
                     f"are lost; training resumes exactly)")
    try:
        status = run.read_status()
        sound = status.get("state") in STATES
    except (OSError, ValueError):
        status, sound = {}, False
    if not sound:
        run.write_status({"state": "stopped", "created_at": _created_at(run), "updated_at": now(),
                          "epoch": state.epoch, "step": state.step, "elapsed_s": state.elapsed(),
                          "best_test_err": state.best_test_err, "host": socket.gethostname(), "seed": cfg.seed})
        notes.append(f"status.json rebuilt from checkpoint.pt: stopped at epoch {state.epoch}, step {state.step}")
    run.log("repaired from checkpoint.pt: " + ("; ".join(notes) or "nothing needed repair"))
    return notes or ["nothing needed repair"]


def _move_aside_too_large(run: Run) -> list[str]:
    """A steps.jsonl larger than ResLab reads goes to steps.jsonl.too-large (kept, never read), so the run resumes."""
    if not reader.steps_too_large(run.steps_path):
        return []
    aside = run.steps_path.with_name(run.steps_path.name + reader.TOO_LARGE_SUFFIX)
    os.replace(run.steps_path, aside)
    return [f"steps.jsonl was larger than {size_text(MAX_ROWS_BYTES)}: moved aside to {aside.name} (kept, not read); "
            f"the curves start again at the checkpoint"]


def _created_at(run: Run) -> float:
    """The run's creation time as well as the folder knows it (config.json is written first)."""
    try:
        return min(os.stat(p).st_mtime for p in (run.path, run.config_path))
    except OSError:
        return now()


def start_over(run: Run) -> list[str]:
    """A run whose checkpoint.pt is gone (RunInfo.restartable), repaired as asked: its logs are cut back to nothing
    and its status to a run stopped before its first step, so that it trains from step 0; events.log keeps what the
    dropped records said (the last epoch's figures)."""
    try:
        epochs = reader.read_rows(run.epochs_path, tolerant=True)[0]
        steps = len(reader.read_rows(run.steps_path, tolerant=True)[0])
    except OSError:
        epochs, steps = [], 0
    last = epochs[-1] if epochs else {}
    run.truncate_logs(0, 0)
    try:
        status = run.read_status()
    except (OSError, ValueError):
        status = {"created_at": _created_at(run), "host": socket.gethostname()}
    for key in ("elapsed_s", "best_test_err", "last_test_err", "last_loss", "last_err", "error"):
        status.pop(key, None)
    run.write_status({**status, "state": "stopped", "epoch": 0, "step": 0, "updated_at": now()})
    said = f" (the last, epoch {last.get('epoch')}: test error {pct(last.get('test_err'))})" if last else ""
    note = (f"checkpoint.pt is missing: started over from step 0; dropped {len(epochs)} epoch record"
            f"{'s' if len(epochs) != 1 else ''}{said} and {steps} step points")
    run.log(f"repaired: {note}")
    return [note]
