"""TensorBoard event files in ``RUN/tensorboard/``, from the same numbers as steps.jsonl and epochs.jsonl.

``TensorBoardLog`` takes the rows the trainer appends to those files (``steps(rows)``, ``epoch(row)``) and writes
them as scalars over iterations: ``train/loss``, ``train/err``, ``train/lr`` per steps.jsonl point and
``epoch/<key>`` (train/test/val loss and error, lr, seconds, images/s) per finished epoch, at the epoch's last
iteration. A resumed run opens its writer with ``purge_step`` = the checkpoint's step + 1: TensorBoard then drops
whatever an earlier session wrote past the checkpoint (the same rows the trainer cuts from the .jsonl files), so no
step is shown twice. ``export_run`` writes a run's event file after the fact from its .jsonl files.

``tensorboard --logdir runs/`` shows every run (each run folder's ``tensorboard/`` is one TensorBoard run).
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path

from core.store.runs import Run
from core.util.errors import MissingDependency, ReportError

DIR_NAME = "tensorboard"
STEP_TAGS = {"loss": "train/loss", "err": "train/err", "lr": "train/lr"}
EPOCH_KEYS = ("train_loss", "train_err", "test_loss", "test_err", "val_loss", "val_err", "lr", "seconds",
              "images_per_s")
FLUSH_S = 10
_EVENT_FILE = re.compile(r"events\.out\.tfevents\.(\d+)\.")


def summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MissingDependency("TensorBoard logging needs the tensorboard package, which is not installed here: "
                          "pip install tensorboard (or reinstall ResLab: pip install -e .)") from None
    return SummaryWriter


def event_files(log_dir: Path) -> list[Path]:
    return sorted(p for p in Path(log_dir).glob("events.out.tfevents.*") if p.is_file())


def _after_existing_files(log_dir: Path) -> None:
    """Event files are read in name order and their names start with the second they were opened: a new session's
    file must sort after the old ones for ``purge_step`` to act on them, so wait out the current second if needed
    (only when a session restarts within a second of the last one, as tests do)."""
    seconds = [int(m.group(1)) for p in event_files(log_dir) if (m := _EVENT_FILE.match(p.name))]
    while seconds and int(time.time()) <= max(seconds):
        time.sleep(0.05)


class TensorBoardLog:
    """A run's TensorBoard writer. ``start_step``: the step the session starts from (0 fresh, else the checkpoint's);
    events an earlier session wrote after it are purged."""

    def __init__(self, log_dir: Path, start_step: int = 0, config: dict | None = None):
        SummaryWriter = summary_writer()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _after_existing_files(self.log_dir)
        self.writer = SummaryWriter(str(self.log_dir), purge_step=start_step + 1, flush_secs=FLUSH_S)
        if config is not None and start_step == 0:
            self.writer.add_text("config", "\n".join(f"    {k} = {v!r}" for k, v in config.items()), 0)

    def steps(self, rows: Iterable[dict]) -> None:
        for r in rows:
            step = r.get("step")
            for key, tag in STEP_TAGS.items():
                if isinstance(r.get(key), (int, float)) and step is not None:
                    self.writer.add_scalar(tag, r[key], step)

    def epoch(self, row: dict) -> None:
        """An epochs.jsonl row; flushed at once, so events up to a checkpoint are on disk before it is saved."""
        step = row.get("step")
        for key in EPOCH_KEYS:
            if isinstance(row.get(key), (int, float)) and step is not None:
                self.writer.add_scalar(f"epoch/{key}", row[key], step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def open_run_log(run: Run, start_step: int) -> TensorBoardLog:
    """The trainer's writer for ``run``, starting at ``start_step`` (after the .jsonl files were cut back to it).

    A run that trained without TensorBoard and is resumed with it gets its rows so far written first."""
    log_dir = run.path / DIR_NAME
    backfill = start_step > 0 and not event_files(log_dir)
    config = run.read_config().to_dict()
    log = TensorBoardLog(log_dir, 0 if backfill else start_step, config)
    if backfill:
        log.steps(run.read_steps())
        for row in run.read_epochs():
            log.epoch(row)
    return log


def enable(run: Run) -> bool:
    """Turn TensorBoard logging on for a run (``resume --tensorboard``): rewrites config.json. False if it was on."""
    import dataclasses

    from core.util.files import atomic_write_bytes

    cfg = run.read_config()
    if cfg.tensorboard:
        return False
    summary_writer()
    atomic_write_bytes(run.config_path, dataclasses.replace(cfg, tensorboard=True).to_json().encode())
    run.log("TensorBoard logging turned on")
    return True


def export_run(run: Run) -> Path:
    """Write ``RUN/tensorboard/`` afresh from steps.jsonl and epochs.jsonl (old event files replaced)."""
    log_dir = run.path / DIR_NAME
    summary_writer()
    try:
        steps, epochs = run.read_steps(), run.read_epochs()
        config = run.read_config().to_dict()
    except (OSError, ValueError) as exc:
        raise ReportError(f"run {run.id} cannot be read ({exc})") from None
    for p in event_files(log_dir):
        p.unlink()
    log = TensorBoardLog(log_dir, 0, config)
    try:
        log.steps(steps)
        for row in epochs:
            log.epoch(row)
    finally:
        log.close()
    return log_dir
