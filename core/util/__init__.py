"""Leaf helpers every package uses: how values read as text (``formatting``), files written atomically and never
through a link (``files``), the errors several packages raise (``errors``), the environment variables one ResLab
process sets for another (``env``), the cycle collector held off while a listing is made (``collector``).

May import: the standard library only (no torch, no other core package).
"""
