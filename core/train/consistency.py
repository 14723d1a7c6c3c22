"""Does checkpoint.pt belong to this run? Its settings against config.json, its position against the run's records.

checkpoint.pt keeps the config it was saved under. A config.json edited since (or a checkpoint.pt copied from another
run) used to end the run ``failed`` with torch's own text ("Error(s) in loading state_dict for CifarResNet", "loader
state was saved with batch_size=64") after the run had been marked running. ``check`` says before anything is
written: settings that shape what the checkpoint holds (the net, the data, the optimiser and schedule, the batch, the
seed) must match, and ``resume --repair`` puts checkpoint.pt's values back into config.json (``restore_config``);
settings a resumed run may change (the learning rate, the length, the device, the speed settings) apply, and events.log
names each one that differs. A checkpoint whose epoch or step the run's records cannot have reached (a forged 10^6, a
negative one) is refused too. The rules themselves live in core/store/checkpoint_check.py (`runs` applies them too).
"""
from __future__ import annotations

import logging
from typing import Any

from core.spec.config import RunConfig
from core.store.checkpoint_check import FIX_HINT, check, differences

log = logging.getLogger(__name__)


def restore_config(cfg: RunConfig, ckpt: dict) -> tuple[RunConfig, list[str]]:
    """``cfg`` with checkpoint.pt's values of the settings that must match (what ``resume --repair`` writes to
    config.json), and a note naming each one put back."""
    saved = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    must, _ = differences(cfg, saved)
    if not must:
        return cfg, []
    names = [line.split(" ", 1)[0] for line in must]
    fixed = RunConfig.from_dict({**cfg.to_dict(), **{n: saved[n] for n in names}}, strict=False)
    return fixed, [f"config.json: {'; '.join(must)}: checkpoint.pt's values restored"]


def inspect(run: Any) -> tuple[str, bool]:
    """For `resume`, before the run is touched: (why ``run`` cannot resume from its checkpoint.pt as it stands, or '';
    whether `resume --repair` fixes that). A checkpoint that cannot be loaded is left to the trainer to report, as a
    run without one is to start."""
    from core.store import reader
    from core.train import checkpoint

    try:
        ckpt = checkpoint.read_resumable(run.checkpoint_path)
        cfg = run.read_config()
        status = run.read_status()
    except Exception:
        log.debug("run %s: its checkpoint, config or status cannot be read; the trainer reports it", run.id,
                  exc_info=True)
        return "", False
    why, _ = check(cfg, ckpt, status, reader.read_rows(run.epochs_path, tolerant=True)[0])
    return why, why.endswith(FIX_HINT)


def repair_config(run: Any) -> list[str]:
    """`resume --repair` of a run whose config.json differs from checkpoint.pt's settings that must match: those are
    put back (the caller holds the run's lock); the notes, also in events.log."""
    from core.train import checkpoint
    from core.util.files import atomic_write_bytes

    cfg, notes = restore_config(run.read_config(), checkpoint.read_resumable(run.checkpoint_path))
    if notes:
        atomic_write_bytes(run.config_path, cfg.to_json().encode())
        run.log("repaired: " + "; ".join(notes))
    return notes


def read_checked(run: Any, status: dict) -> tuple[Any, list[str]]:
    """The trainer's checkpoint.pt: (None: the run starts | the checkpoint | a CheckpointError, reported once the run is
    marked running; the notes for events.log on what changed). Raises RunError, before anything is written, for a
    run that has trained but lost its checkpoint.pt (core/store/info.py: lost_checkpoint), for a checkpoint saved
    under other settings than config.json's that must match, or at an epoch or step the run's records never
    reached."""
    from core.store import reader
    from core.store.info import RESTART_HINT, lost_checkpoint
    from core.store.runs import RunError
    from core.train import checkpoint

    if big := reader.steps_too_large(run.steps_path):            # refused before it is cut back (and fails on it)
        raise RunError(f"run {run.id} is damaged: {big}")
    rows = reader.read_rows(run.epochs_path, tolerant=True)[0]
    if gone := lost_checkpoint("stopped", status, len(rows), run.checkpoint_path):    # never start over (and cut the
        raise RunError(f"run {run.id} is damaged: {gone}; {RESTART_HINT}")      # run's records) unasked
    if not run.checkpoint_path.exists():
        return None, []
    try:
        ckpt = checkpoint.read_for_resume(run.checkpoint_path)
    except checkpoint.CheckpointError as exc:
        return exc, []
    try:
        cfg = run.read_config()
    except (OSError, ValueError):
        return ckpt, []                          # the trainer says why
    why, notes = check(cfg, ckpt, status, rows)
    if why:
        raise RunError(f"run {run.id} cannot resume: {why}")
    return ckpt, notes
