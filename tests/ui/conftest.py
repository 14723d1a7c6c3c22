"""Fixtures for the UI tests: a store of fixed, hand-written run folders."""
from __future__ import annotations

from pathlib import Path

import pytest

from .fixtures import populate


@pytest.fixture
def fixture_runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    populate(root)
    return root
