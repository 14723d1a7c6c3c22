"""Fixtures of the CLI tests."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from core.serve import scheduler as S
from core.store.runs import Run


@pytest.fixture
def folders(tmp_path):
    made = []

    def folder(name: str = "runs") -> Path:
        made.append(tmp_path / name)
        return made[-1]

    yield folder
    for root in made:
        S.stop(root, timeout=10)
        for st in root.glob("*/status.json"):       # a trainer a failed test left behind
            pid = json.loads(st.read_text()).get("pid")
            if pid and Run(st.parent).is_locked():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
