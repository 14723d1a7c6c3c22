"""Does checkpoint.pt belong to this run? Its settings against config.json, its position against the run's records.

checkpoint.pt keeps the config it was saved under. A config.json edited since (or a checkpoint.pt copied from another
run) used to end the run ``failed`` with torch's own text ("Error(s) in loading state_dict for CifarResNet", "loader
state was saved with batch_size=64") after the run had been marked running. ``check`` says before anything is
written: settings that shape what the checkpoint holds (the net, the data, the optimiser and schedule, the batch, the
seed) must match, and ``resume --repair`` puts checkpoint.pt's values back into config.json (``restore_config``);
settings a resumed run may change (the learning rate, the length, the device, the speed settings) apply, and events.log
names each one that differs. A checkpoint whose epoch or step the run's records cannot have reached (a forged 10^6, a
negative one) is refused too.
"""
from __future__ import annotations

from typing import Any

from core.spec.config import RunConfig
from core.util.formatting import number_text

# settings a resumed run may change: they apply from the resume on (events.log says which differ)
MAY_CHANGE = frozenset({
    "lr", "momentum", "weight_decay", "beta1", "beta2", "eps", "dropout", "augment", "milestones", "milestone_unit",
    "lr_factor", "min_lr", "warmup_iters", "error_warmup", "epochs", "iterations", "precision", "channels_last",
    "compile", "on_oom", "micro_batches", "sync_bn", "device", "deterministic", "name", "sweep_name", "log_every",
    "tensorboard", "data_dir", "download"})


FIX_HINT = "resume --repair puts checkpoint.pt's values back into config.json"


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, float):
        return number_text(value) if abs(value) >= 1e15 else f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def differences(cfg: RunConfig, saved: dict) -> tuple[list[str], list[str]]:
    """(fields that must match but do not, fields that may change and do): each 'depth 20 in config.json, 8 in
    checkpoint.pt'. A field checkpoint.pt lacks (saved by an older ResLab) is taken as matching."""
    now = cfg.to_dict()
    must, may = [], []
    for name, value in now.items():
        if name not in saved:
            continue
        old = saved[name]
        if (list(old) if isinstance(old, (list, tuple)) else old) == value:
            continue
        line = f"{name} {_text(value)} in config.json, {_text(old)} in checkpoint.pt"
        (may if name in MAY_CHANGE else must).append(line)
    return must, may


def position_problem(ckpt: dict, status: dict, epochs: list[dict]) -> str:
    """'' when the checkpoint's epoch and step are ones this run's records can have reached; else why not. Rows
    are appended before each checkpoint and status.json is written after it, so the checkpoint is never further
    than the furthest of the two."""
    epoch, step = ckpt.get("epoch"), ckpt.get("step")
    if not (type(epoch) is int and type(step) is int and epoch >= 0 and step >= 0):
        return f"checkpoint.pt says epoch {_text(epoch)}, step {_text(step)}, which no run reaches"
    reached = max([status.get("epoch") or 0] + [r.get("epoch") or 0 for r in epochs])
    if epoch > reached:
        return (f"checkpoint.pt says epoch {epoch}, but the run's records end at epoch {reached}: it was not saved "
                f"by this run, or was edited")
    per = status.get("iters_per_epoch")
    if isinstance(per, int) and per > 0 and not epoch * per <= step <= (epoch + 1) * per:
        return f"checkpoint.pt says step {step}, outside its epoch {epoch + 1} (iterations {epoch * per}-" \
               f"{(epoch + 1) * per}): it was not saved by this run, or was edited"
    return ""


def check(cfg: RunConfig, ckpt: dict, status: dict, epochs: list[dict]) -> tuple[str, list[str]]:
    """(why this run cannot resume from ``ckpt`` as it stands, or ''; the notes for events.log on what changes)."""
    if why := position_problem(ckpt, status, epochs):
        return f"{why}; it cannot be resumed: start a new run", []
    saved = ckpt.get("config")
    if not isinstance(saved, dict):
        return "", []
    must, may = differences(cfg, saved)
    if must:
        return (f"config.json differs from the settings checkpoint.pt was saved with ({'; '.join(must)}); "
                f"{FIX_HINT}"), []
    return "", ([f"settings changed since checkpoint.pt was saved (they apply from here on): {'; '.join(may)}"]
                if may else [])


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
    except Exception:  # noqa: BLE001 - reported by the trainer, with its message
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

    rows = reader.read_rows(run.epochs_path, tolerant=True)[0]
    if gone := lost_checkpoint("stopped", status, rows, run.checkpoint_path):    # never start over (and cut the
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
