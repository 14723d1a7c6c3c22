"""Shared fixtures: small real CIFAR-10 subsets written by ../shared/tools/cifar10_jpeg.py, tiny configs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TOOL = SHARED / "tools" / "cifar10_jpeg.py"

# Tests never touch the network or the user's folders.
os.environ.setdefault("RESLAB_DATA", str(ROOT / ".data-tests-unused"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n 2 (the README's command): each worker and the trainers it starts use one thread, so two workers share
    # the machine's cores instead of each asking for all of them
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _private_user_folders(tmp_path_factory, _session_cache, monkeypatch):
    """Never the user's folders (core/store/settings.py): a fresh settings folder per test (the form remembers its last
    values there), one cache folder for the session (a channels_last probe measured once serves every test)."""
    monkeypatch.setenv("RESLAB_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.setenv("RESLAB_CACHE_DIR", str(_session_cache))
    monkeypatch.setenv("RESLAB_CPU_BF16", "off")     # precision auto stays fp32 on a CPU with bf16 hardware too


def write_cifar_subset(dest: Path, train_per_class: int, test_per_class: int) -> Path:
    if not TOOL.exists():
        pytest.skip(f"{TOOL} not found: ../shared must sit beside the repository")
    subprocess.run([sys.executable, str(TOOL), str(dest), "--train-per-class", str(train_per_class),
                    "--test-per-class", str(test_per_class)], check=True, capture_output=True)
    return dest


@pytest.fixture(scope="session")
def cifar_small(tmp_path_factory) -> Path:
    """A data folder holding cifar-10-batches-py with 200 training and 50 test images per class (real images)."""
    return write_cifar_subset(tmp_path_factory.mktemp("cifar_small"), 200, 50)


@pytest.fixture(scope="session")
def cifar_tiny(tmp_path_factory) -> Path:
    """20 training and 10 test images per class: for plumbing tests on real files."""
    return write_cifar_subset(tmp_path_factory.mktemp("cifar_tiny"), 20, 10)


def tiny_config(**overrides):
    """A RunConfig that trains in about a second on the CPU: depth 8, width 4, synthetic data."""
    from core.spec.config import RunConfig

    base = dict(depth=8, width=4, dataset="synthetic", max_train_images=256, max_test_images=128, batch_size=32,
                epochs=2, iterations=0, milestones=(), schedule="constant", lr=0.05, device="cpu", log_every=4,
                precision="fp32", download=False)
    base.update(overrides)
    return RunConfig(**base)


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture(scope="session")
def damaged_runs(tmp_path_factory):
    """A runs folder with one copy of a tiny stopped run per (run file, kind of damage): tests/core/corruptions.py.
    Read-only for its users (copy it to change it). Returns (runs folder, {run id: (file, damage)}, outside file)."""
    from tests.core.corruptions import base_run, corrupt_store

    root = tmp_path_factory.mktemp("damaged")
    base = base_run(root / "base-store")
    runs = root / "runs"
    runs.mkdir()
    return runs, corrupt_store(base.path, runs, root / "outside.txt"), root / "outside.txt"


def end_left_behind(root: Path) -> None:
    """After a test that starts schedulers and trainers in ``root``: the scheduler stops, and a trainer a failed test
    left behind (its run still locked) is killed."""
    import json
    import signal

    from core.serve import scheduler_control as S
    from core.store.runs import Run

    S.stop(root, timeout=10)
    for st in root.glob("*/status.json"):
        pid = json.loads(st.read_text()).get("pid")
        if pid and Run(st.parent).is_locked():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

