"""ResLab engine: CIFAR ResNets (He et al. 2016), device-resident data, exact-resume trainer, run store.

Packages by role, each importing only those before it in this list (tests/core/test_layering.py enforces it):

- ``util``: text formatting, atomic files, shared errors (standard library only)
- ``spec``: what a run is (RunConfig, presets, limits, field help, grids and sweeps)
- ``data``: data set specs, CIFAR reading, the run's planned length, the device loader
- ``store``: the run folders (the bus every view reads), the tolerant reader, run info, locks, user settings
- ``train``: models, optimizers, the step, the trainer loop, checkpoints, requests, events, distributed
- ``serve``: the queue of a runs folder, its scheduler over device slots, launching, Slurm, GPU readings
- ``results``: seed groups, Table 6, figures, layer responses, the report

Imports torch, numpy and the standard library only; never textual or rich (the UI lives in screens/).
"""

__version__ = "0.1.0"
