"""What a run is, before anything runs: ``RunConfig`` and its presets (``config``), the bounds of every setting
(``limits``), each setting's help and form group (``field_help``), grids and sweeps of settings (``grid``).

May import: core.util. No torch: the form and the CLI's argument checks import this package.
"""
