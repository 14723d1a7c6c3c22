"""Python's cycle collector held off while thousands of objects that make no cycles are made (a listing of ten
thousand runs): each of its passes walks every object made so far, a third of the time of decoding 10,000 rows."""
from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def paused():
    """The collector off for the block, back on after it if it was on before (nested or from threads: never left
    off by this)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
