"""Fixtures of the CLI tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import end_left_behind


@pytest.fixture
def folders(tmp_path):
    made = []

    def folder(name: str = "runs") -> Path:
        made.append(tmp_path / name)
        return made[-1]

    yield folder
    for root in made:
        end_left_behind(root)
