"""Environment variables one ResLab process sets for another (no torch here: the scheduler imports this).

The scheduler sets them for the trainer processes it starts (core/serve/launch.py ``child_env``); the trainer reads
them (core/train/device.py, core/train/distributed.py, core/train/memory_format.py).
"""
DEVICE_ENV = "RESLAB_DEVICE"                    # the device to train on, whatever the run's config names
SHARED_ENV = "RESLAB_GPU_SHARED"                # N: this GPU trains N runs at once (scheduler --per-device N)
MEMORY_FRACTION_ENV = "RESLAB_MEMORY_FRACTION"  # the share of its GPU's memory a trainer process may take
