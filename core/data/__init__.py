"""The data a run trains on: data set specs and where their files are (``datasets``), CIFAR-10/100 download and the
python-batch reader (``cifar``), the run's length in iterations before its data is loaded (``plan``), the
device-resident loader with batched crop and flip (``loader``), the identity of loaded data that a run records
(``identity``).

May import: core.util, core.spec.
"""
