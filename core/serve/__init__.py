"""Serving a runs folder: its queue (``queue``), the scheduler over device slots (``scheduler``), starting trainer
processes locally or under torchrun (``launch``), Slurm through submitit (``slurm``), GPUs and their NVML readings
(``gpus``).

May import: core.util, core.spec, core.data, core.store, core.train.
"""
