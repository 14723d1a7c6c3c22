"""The compile of a compiled model's training step, before its first timed step (``warm_up``).

``COMPILE_CALLS`` steps on the epoch's first batch, each trace undone (core/train/step.py ``TrainStep.restoring``): the
run trains what an eager one does and resumes exactly (mode reduce-overhead records its CUDA graphs on the 2nd call
and replays them from the 3rd). status.json says ``compiling`` meanwhile, and whether a stop ends the process at once
(``compile_stop``); core/train/compile_watch.py keeps the heartbeat and answers that stop. A compiler that is missing
or fails ends the run as failed, with the way around it. bench/throughput.py compiles with the same number of calls.
"""
from __future__ import annotations

import time
from typing import Any

from core.train.compile_watch import CompileWatch, leave_of
from core.train.device import sync_device
from core.train.ending import Stop

COMPILE_CALLS = 3      # warm-up steps of a compiled model: compile; record the CUDA graphs; replay them once


def warm_up(trainer: Any) -> None:
    """Compile ``trainer``'s step (a core.train.trainer.Trainer with its setup built) on its first full batch; nothing
    when the model is not compiled or the loader has no full batch (the compiled module only ever sees full ones).
    Raises ``Stop("failed", ...)`` when torch.compile fails."""
    s = trainer.setup
    batch = s.train_loader.sample_batch() if s.step.compiled is not None else None
    if batch is None:
        return
    cfg = s.cfg
    graphs = (" (on a CPU torch skips the CUDA graphs: the same code as default)"
              if cfg.compile == "reduce-overhead" and s.device.type != "cuda" else "")
    trainer.log(f"compiling the training step (torch.compile mode {cfg.compile}){graphs}")
    t0 = time.monotonic()
    trainer.write_status(compiling=True, compile_mode=cfg.compile, compile_stop="now" if leave_of(trainer) else "")
    from torch._dynamo.exc import TorchDynamoException  # (imported once torch.compile is used)

    try:
        with CompileWatch(trainer), s.step.restoring():      # the heartbeat; a stop may end the process at once
            for _ in range(COMPILE_CALLS):
                trainer._guarded_step(*batch, s.schedule.lr(trainer.train_state.step), cfg.batch_size)
            sync_device(s.device)
    except TorchDynamoException as exc:      # a compiler missing or failing: the cause, and the way around it
        inner = getattr(exc, "inner_exception", None) or exc
        raise Stop("failed", f"torch.compile (mode {cfg.compile}) failed; --compile off trains without it: "
                             f"{type(inner).__name__}: {inner}") from None
    compile_s = time.monotonic() - t0
    trainer.log(f"torch.compile took {compile_s:.1f} s (not counted as training time)")
    trainer.write_status(compile_s=round(compile_s, 2), compiling=False)
