"""The training engine: models (``models``), optimizers and schedules (``optim``), building a run's model, data and
optimizer (``setup``), the step and evaluation (``step``), the loop (``trainer``) with its state (``state``) and
checkpoints (``checkpoint``, ``repair``), stop/pause requests (``requests``), typed events (``events``), device,
precision and RNG helpers (``device``), channels_last (``memory_format``), torch.distributed (``distributed``),
TensorBoard event files (``tensorboard``).

May import: core.util, core.spec, core.data, core.store.
"""
