"""core/ is the engine: importing every module of it (and training) never loads textual or rich."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import importlib, pkgutil, sys, tempfile
import core
for mod in pkgutil.iter_modules(core.__path__):
    importlib.import_module("core." + mod.name)
from core.runs import RunStore
from core.trainer import train_run
from core.config import RunConfig
cfg = RunConfig(depth=8, width=4, dataset="synthetic", max_train_images=64, max_test_images=32, batch_size=32,
                epochs=1, iterations=0, milestones=(), device="cpu")
run, state = train_run(RunStore(tempfile.mkdtemp()), cfg)
assert state == "finished", state
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(" ".join(bad) or "clean")
"""


def test_engine_never_imports_the_ui():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
