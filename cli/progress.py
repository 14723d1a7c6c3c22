"""What `train` and `resume` print while the trainer runs, driven by its events (core.train.events).

* ``RichDisplay`` (stdout is a terminal): an epoch bar and a batch bar with loss, training and test error,
  learning rate, images/s and ETA; one line per finished epoch printed above the bars.
* ``PlainDisplay`` (a pipe, a file, nohup, TERM=dumb): a start line, one line per epoch, a progress line
  every ``every_s`` seconds; no control codes at all.

Both take events through ``__call__`` (the trainer's ``on_event``); the trainer throttles Progress events to
a few per second, so nothing here needs throttling beyond the plain display's interval.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from core.store.rules import ACTIVE
from core.train.events import EpochEnded, LogLine, Progress, Started, StateChanged, TrainerEvent
from core.util.formatting import duration, num, pct, rate


class Display:
    """Common bookkeeping: totals from Started, last test error, the stop notice."""

    def __init__(self, out=None, stop_event: threading.Event | None = None):
        self.out = out or sys.stdout
        self.stop_event = stop_event
        self.total_epochs: int | None = None
        self.iters_per_epoch: int | None = None
        self.total_steps: int | None = None
        self.last_test_err: float | None = None
        self.best_test_err: float | None = None
        self._stop_noted = False
        self.state = "running"

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        pass

    def __call__(self, event: TrainerEvent) -> None:
        if self.stop_event is not None and self.stop_event.is_set() and not self._stop_noted:
            self._stop_noted = True
            self.line("stopping: saving a checkpoint ...")
        if isinstance(event, Started):
            self.on_started(event)
        elif isinstance(event, Progress):
            self.on_progress(event)
        elif isinstance(event, EpochEnded):
            self.on_epoch_ended(event)
        elif isinstance(event, StateChanged):
            self.on_state_changed(event)
        elif isinstance(event, LogLine):
            self.on_log_line(event)

    def line(self, text: str) -> None:
        raise NotImplementedError

    # shared handlers
    def on_started(self, ev: Started) -> None:
        # The trainer's own LogLine ("started ResNet-20 A ... on cpu", "resumed at epoch ...") is the start line.
        self.total_epochs, self.iters_per_epoch, self.total_steps = ev.total_epochs, ev.iters_per_epoch, ev.total_steps

    def on_progress(self, ev: Progress) -> None:
        """Each display draws progress its own way."""

    def on_epoch_ended(self, ev: EpochEnded) -> None:
        row = ev.row
        if row.get("test_err") is not None:
            self.last_test_err = row["test_err"]
            self.best_test_err = min(self.best_test_err if self.best_test_err is not None else 1e9, row["test_err"])
        self.line(epoch_line(row, self.total_epochs))

    def on_state_changed(self, ev: StateChanged) -> None:
        if ev.state == "paused":
            self.line("paused (a 'continue' request, e.g. from the TUI, resumes training)")
        elif ev.state == "running" and self.state == "paused":
            self.line("continuing")
        self.state = ev.state

    def on_log_line(self, ev: LogLine) -> None:
        # After the final state the command prints its own summary; the trainer's closing log line would repeat it.
        if self.state in ACTIVE:
            self.line(ev.message)


def epoch_line(row: dict, total_epochs: int | None) -> str:
    """'epoch 3/10  train loss 1.234 err 45.60%  test loss 1.111 err 40.10%  lr 0.1  12.3s  1,234 img/s'"""
    parts = [f"epoch {row.get('epoch')}/{total_epochs or '?'}",
             f"train loss {num(row.get('train_loss'))} err {pct(row.get('train_err'))}"]
    if row.get("val_err") is not None:
        parts.append(f"val loss {num(row.get('val_loss'))} err {pct(row.get('val_err'))}")
    parts.append(f"test loss {num(row.get('test_loss'))} err {pct(row.get('test_err'))}")
    parts.append(f"lr {num(row.get('lr'))}")
    parts.append(duration(row.get("seconds")))
    parts.append(f"{rate(row.get('images_per_s'))} img/s")
    return "  ".join(parts)


class PlainDisplay(Display):
    """Plain lines, flushed at once (so `tail -f` of a redirected log is live)."""

    def __init__(self, out=None, stop_event: threading.Event | None = None, every_s: float = 30.0):
        super().__init__(out, stop_event)
        self.every_s = every_s
        self._last = time.monotonic()

    def line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()
        self._last = time.monotonic()

    def on_progress(self, ev: Progress) -> None:
        if time.monotonic() - self._last < self.every_s:
            return
        frac = f" ({100 * ev.step / ev.total_steps:.0f}%)" if ev.total_steps else ""
        self.line(f"epoch {ev.epoch}/{ev.total_epochs}  step {ev.step}/{ev.total_steps}{frac}  loss {num(ev.loss)} "
                  f"err {pct(ev.err)}  lr {num(ev.lr)}  {rate(ev.images_per_s)} img/s  ETA {duration(ev.eta_s)}")


class RichDisplay(Display):
    """Two live bars on a terminal; epoch lines and log lines scroll above them."""

    def __init__(self, out=None, stop_event: threading.Event | None = None):
        super().__init__(out, stop_event)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.console = Console(file=self.out, highlight=False)
        self.progress = Progress(TextColumn("{task.description}", justify="right"), BarColumn(bar_width=32),
                                 TaskProgressColumn(), TextColumn("{task.fields[info]}"),
                                 console=self.console, refresh_per_second=4)
        self.epoch_task = self.progress.add_task("epoch", total=None, info="", visible=False)
        self.batch_task = self.progress.add_task("batch", total=None, info="", visible=False)
        self.progress.start()

    def close(self) -> None:
        self.progress.stop()

    def line(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False)

    def on_started(self, ev: Started) -> None:
        super().on_started(ev)
        self.progress.update(self.epoch_task, total=ev.total_epochs, completed=ev.epoch, visible=True,
                             description=f"epoch {min(ev.epoch + 1, ev.total_epochs)}/{ev.total_epochs}")
        self.progress.update(self.batch_task, total=ev.iters_per_epoch, completed=0, visible=True,
                             description=f"batch 0/{ev.iters_per_epoch}")

    def on_progress(self, ev: Progress) -> None:
        done_epochs = ev.epoch - 1 + ev.iter_in_epoch / max(1, ev.iters_per_epoch)
        test = (f"test err {pct(self.last_test_err)} (best {pct(self.best_test_err)})"
                if self.last_test_err is not None else "test err -")
        self.progress.update(self.epoch_task, total=ev.total_epochs, completed=done_epochs,
                             description=f"epoch {ev.epoch}/{ev.total_epochs}",
                             info=f"{test}  elapsed {duration(ev.elapsed_s)}  ETA {duration(ev.eta_s)}")
        self.progress.update(self.batch_task, total=ev.iters_per_epoch, completed=ev.iter_in_epoch,
                             description=f"batch {ev.iter_in_epoch}/{ev.iters_per_epoch}",
                             info=f"loss {num(ev.loss)}  train err {pct(ev.err)}  lr {num(ev.lr)}  "
                                  f"{rate(ev.images_per_s)} img/s")

    def on_epoch_ended(self, ev: EpochEnded) -> None:
        super().on_epoch_ended(ev)
        self.progress.update(self.epoch_task, completed=ev.row.get("epoch", 0))
        self.progress.update(self.batch_task, completed=self.iters_per_epoch,
                             description=f"batch {self.iters_per_epoch}/{self.iters_per_epoch}")

    def on_state_changed(self, ev: StateChanged) -> None:
        super().on_state_changed(ev)
        if ev.state == "paused":
            self.progress.update(self.batch_task, description="paused")


def make_display(out=None, stop_event: threading.Event | None = None) -> Display:
    """Rich bars on a real terminal; plain lines otherwise (pipe, file, nohup, TERM=dumb)."""
    out = out or sys.stdout
    tty = hasattr(out, "isatty") and out.isatty() and os.environ.get("TERM", "") != "dumb"
    return RichDisplay(out, stop_event) if tty else PlainDisplay(out, stop_event)
