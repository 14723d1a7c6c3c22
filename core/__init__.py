"""ResLab engine: CIFAR ResNets (He et al. 2016), device-resident data, exact-resume trainer, run store.

Imports torch, numpy and the standard library only; never textual or rich (the UI lives in screens/).
"""

__version__ = "0.1.0"
