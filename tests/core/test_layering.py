"""The layering: core/ (the engine) never loads textual or rich; core's packages import only the packages below
them (util -> spec -> data -> store -> train -> serve -> study -> results); no import cycles among the project's
modules.
The size of functions is ruff's job (pyproject's [tool.ruff], run by test_ruff.py), not a cap on lines per file."""
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
for mod in pkgutil.walk_packages(core.__path__, "core."):
    importlib.import_module(mod.name)
from core.store.runs import RunStore
from core.train.trainer import train_run
from core.spec.config import RunConfig
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


# -- the shape of the code: packages in one direction, no import cycles ---------------------------------------------
PACKAGES = ("core", "cli", "screens")
LAYERS = ("util", "spec", "data", "store", "train", "serve", "study", "results")   # each imports only those before it


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


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[0] == "core" and parts[1] in LAYERS else None


def test_core_is_packages_and_each_says_what_it_holds_and_may_import():
    top = sorted(p.name for p in (ROOT / "core").iterdir() if not p.name.startswith("__"))
    assert top == sorted(LAYERS), f"core/ should hold only its packages: {top}"
    for name in LAYERS:
        doc = ast.get_docstring(ast.parse((ROOT / "core" / name / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"core/{name}/__init__.py must say what it holds and what it may import"


def test_core_packages_import_only_the_packages_below_them():
    mods = project_modules()
    upward = []
    for name, path in mods.items():
        here = layer_of(name)
        if here is None:
            continue
        for target in imports_of(name, path, mods):
            there = layer_of(target)
            if there is not None and there > here:
                upward.append(f"{name} -> {target}")
    assert not upward, "imports against the package direction " + " -> ".join(LAYERS) + ": " + ", ".join(upward)


def test_the_direction_check_sees_an_upward_import(tmp_path):
    """The check above can fail: a spec module importing the trainer is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from core.train.trainer import Trainer\n")
    mods = project_modules() | {"core.spec.bad": bad}
    assert "core.train.trainer" in imports_of("core.spec.bad", bad, mods)
    assert layer_of("core.train.trainer") > layer_of("core.spec.bad")


def test_no_import_cycles_between_the_project_modules():
    mods = project_modules()
    assert {"core.train.trainer", "cli.main", "screens.app", "tui_app"} <= set(mods)
    graph = {name: imports_of(name, path, mods) for name, path in mods.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
