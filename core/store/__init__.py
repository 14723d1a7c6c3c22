"""The run store: one folder per run. ``runs`` (``RunStore``, ``Run``: creating, locking, writing a run's files),
``reader`` (the one tolerant reader of run files: anything ResLab did not write raises ``DamagedFileError``),
``info`` (what a list shows about a run, its state, the order of lists), ``lock`` (flock'd lock files),
``settings`` (the user's config and cache folders), ``estimate`` (how long runs will take, from the pace of
past runs).

May import: core.util, core.spec, core.data.
"""
