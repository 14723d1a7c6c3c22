"""Environment variables one ResLab process sets for another (no torch here: the scheduler imports this).

The scheduler sets them for the trainer processes it starts (core/serve/launch.py ``child_env``); the trainer reads
them (core/train/device.py, core/train/distributed.py, core/train/memory_format.py).
"""
DEVICE_ENV = "RESLAB_DEVICE"                    # the device to train on, whatever the run's config names
SHARED_ENV = "RESLAB_GPU_SHARED"                # N: this GPU trains N runs at once (scheduler --per-device N)
MEMORY_FRACTION_ENV = "RESLAB_MEMORY_FRACTION"  # the share of its GPU's memory a trainer process may take

# torch.OutOfMemoryError (2.5), torch.amp.GradScaler(device) (2.3), init_process_group(device_id=) (2.3), fused SGD
# on CUDA (2.3): on an older torch every run failed while being built, and `except torch.OutOfMemoryError` turned any
# failure into an AttributeError
MIN_TORCH = (2, 5)


def torch_version_problem(version: str) -> str | None:
    """One line when torch ``version`` ('2.4.1+cu121') is older than ResLab needs, else None."""
    try:
        have = tuple(int(part) for part in version.split("+")[0].split(".")[:2])
    except ValueError:
        return None         # a version we cannot read (a source build): let it try
    if have >= MIN_TORCH:
        return None
    need = ".".join(map(str, MIN_TORCH))
    return f"ResLab needs torch {need} or newer, this is torch {version}: pip install -U 'torch>={need}'"
