"""A stop before a trainer process's first step has completed ends that process at once (a CLI trainer's).

A stop is obeyed between iterations, after a checkpoint. A model that takes minutes to build, or a first step that
takes minutes (a net of 20,000 layers, a huge batch), never reaches that point: SIGTERM, `stop RUN` and the TUI's stop
went unanswered until the kernel's OOM killer came (issue 35, item 4). Until this process's first step has completed
there is nothing to save: the run resumes from where this process took it (its checkpoint, or step 0).

``FirstStepGuard`` watches the stop event and the run's request file from a thread of its own (the main thread may sit
inside one torch call for minutes, where nothing of Python runs). On a stop it records the run as stopped (status.json,
events.log) and calls ``exit``: the CLI passes one that ends the process with its stop exit code (``os._exit``: the
main thread cannot be unwound from inside a torch call). Once the first step has completed, or the trainer ended,
the guard stands down and the stop takes the usual way (a checkpoint, then the exit). An in-app trainer (a thread of
the TUI) and a DDP run (its processes must stop together) pass no ``exit``: no guard.

``RESLAB_TEST_FIRST_STEP_S``: tests make the first step this many seconds slower (a busy wait in torch, which no
Python signal handler interrupts), to stop a trainer inside it.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from core.util.errors import carry_on

log = logging.getLogger(__name__)

POLL_S = 0.2                                 # how often the guard looks at the stop event and the request file
TEST_DELAY_ENV = "RESLAB_TEST_FIRST_STEP_S"


class FirstStepGuard:
    def __init__(self, trainer: Any, exit: Callable[[], object] | None):
        self.trainer, self.exit = trainer, exit
        self.standing = threading.Event()        # set: the guard stands down (first step done, or the trainer ended)
        self.lock = threading.Lock()             # a stand-down and a stop never overlap
        self.thread = threading.Thread(target=self._watch, name="reslab-first-step-guard", daemon=True)

    def arm(self) -> None:
        """Wrap the trainer's ``_guarded_step`` to learn when the first step is done, and start watching; no watching
        where a stop must take the usual way (no ``exit`` given; a DDP run)."""
        trainer = self.trainer
        step = trainer._guarded_step

        def first_step(*args: Any, **kwargs: Any):
            _test_delay()
            try:
                return step(*args, **kwargs)
            finally:
                del trainer._guarded_step            # later steps: the method itself
                self.stand_down()
        trainer._guarded_step = first_step
        if self.exit is not None and not trainer.dist.many:
            self.thread.start()

    def stand_down(self) -> None:
        with self.lock:
            self.standing.set()

    def _watch(self) -> None:
        requests = self.trainer.requests
        while not self.standing.wait(POLL_S):
            if not requests.stop_event.is_set():
                try:
                    if self.trainer.run_folder.read_request() == "stop":
                        requests.stop_event.set()
                except OSError:
                    pass
            if requests.stop_event.is_set():
                with self.lock:
                    if not self.standing.is_set():
                        self._stop_now()
                return

    def _stop_now(self) -> None:
        """Record the run as stopped where this process took it, and end the process."""
        t = self.trainer
        where = f"step {t.train_state.step}" if t.train_state.step else "step 0 (it has no checkpoint yet)"
        # a full disk: the run reads as crashed, and resumes the same way
        with carry_on(log, f"recording run {t.run_folder.id}'s stop", logging.WARNING):
            t.run_folder.clear_request()
            t.write_status(state="stopped", error=None)
            t.run_folder.log(f"stopped before this process completed its first step (building the model or in a long "
                             f"first step): nothing to save; resumable from {where}")
        self.exit()


def _test_delay() -> None:
    """Tests only (RESLAB_TEST_FIRST_STEP_S): seconds of torch work no Python signal handler interrupts."""
    seconds = float(os.environ.get(TEST_DELAY_ENV) or 0)
    if seconds <= 0:
        return
    import torch

    a = torch.ones(512, 512)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        torch.linalg.matrix_power(a / 512, 64)      # ~64 matmuls in one call
