"""The layering: core/ (the engine) never loads textual or rich; no import cycles among the project's modules;
every module of core/, cli/ and screens/ short enough to read in one sitting."""
from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path

import pytest

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


# -- the shape of the code: no import cycles, no module too long to read in one sitting -----------------------------
PACKAGES = ("core", "cli", "screens")
MAX_LINES = 450


def project_modules() -> dict[str, Path]:
    mods = {"tui_app": ROOT / "tui_app.py"}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def imports_of(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (function-level imports included)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        # a package's __init__ importing its own submodules is not a cycle worth counting
        found |= {t for t in targets if t in mods and t != name and not t.startswith(name + ".")}
    return found


def test_no_import_cycles_between_the_project_modules():
    mods = project_modules()
    assert {"core.trainer", "cli.main", "screens.app", "tui_app"} <= set(mods)
    graph = {name: imports_of(name, path, mods) for name, path in mods.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_every_module_is_short_enough_to_read_in_one_sitting():
    long = {str(p.relative_to(ROOT)): n for p in project_modules().values()
            if (n := len(p.read_text().splitlines())) >= MAX_LINES}
    assert not long, f"modules of {MAX_LINES}+ lines: {long}"
