"""A small fuzz over run files x kinds of damage (issue 11, point 1; queue.json and scheduler.json: issue 20), shared
by the CLI and the TUI tests.

``base_run`` trains one tiny run once: 2 epochs of 2 iterations, stopped right after the last iteration, so that it
has every file (config, status, epochs, steps, events, checkpoint, best) and a resume only evaluates its last epoch.
``corrupt_store`` copies it once per (file, damage) into one runs folder; ``expected_state`` says how each copy must
be listed.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

FILES = ("config.json", "status.json", "epochs.jsonl", "steps.jsonl", "events.log", "checkpoint.pt", "best.pt",
         "request", "lock", "queue.json")
# A queued run's queue.json as the queue writes it (core/serve/queue.py): the queue.json cases are queued copies.
QUEUE_ENTRY = b'{"position": 1, "added_at": 1700000000.0, "launches": 0, "retries": 0, "oom_retried": false, ' \
              b'"settled": false}\n'
# scheduler.json as a scheduler writes it (core/serve/scheduler.py), for the runs folder's own files
SCHEDULER_STATE = b'{"pid": 4242, "host": "h", "updated_at": 1700000000.0, "retries": 2, "devices": ["cpu"], ' \
                  b'"slots": [{"slot": "cpu#0", "device": "cpu", "run": "base"}], "stay": false, "idle_exit_s": 300}\n'

OUTSIDE_TEXT = b"a file outside the runs folder: ResLab must never write or read it\n"


def _objects(data: bytes, change: Callable[[dict], Any]) -> bytes | None:
    """Each JSON object of a .json/.jsonl file changed; None when the bytes are not JSON objects."""
    try:
        objs = [json.loads(data)]                                                      # a .json file
    except ValueError:
        try:
            objs = [json.loads(line) for line in data.decode().splitlines() if line.strip()]   # a .jsonl file
        except ValueError:
            return None
    if not objs or not all(isinstance(o, dict) for o in objs):
        return None
    return "".join(json.dumps(change(o)) + "\n" for o in objs).encode()


def _keep_version(obj: dict, value: Callable[[Any], Any]) -> dict:
    return {k: (v if k == "schema_version" else value(v)) for k, v in obj.items()}


def _stringify_numbers(v: Any) -> Any:
    return f"{v}x" if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _non_finite(value: float) -> Callable[[Any], Any]:
    return lambda v: value if isinstance(v, (int, float)) and not isinstance(v, bool) else v


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "not-an-object": lambda b: b"1\n",
    "wrong-types": lambda b: _objects(b, lambda o: _keep_version(o, lambda v: [v])) or b'{"model": [1]}\n',
    "missing-keys": lambda b: _objects(b, lambda o: {}) or b"{}\n",
    "non-numeric": lambda b: _objects(b, lambda o: _keep_version(o, _stringify_numbers)) or b"NaN 1.5x -e\n",
    "non-utf8": lambda b: b"\xff\xfe\x80 not text \x1b[2J\x1b]0;owned\x07\n",
    "empty": lambda b: b"",
    "truncated": lambda b: b[: len(b) // 2],
    "directory": lambda b: b"",
    "symlink": lambda b: b"",
    "missing": lambda b: None,         # the file deleted (issue 35: a stopped run whose checkpoint.pt is gone)
    # every number NaN / infinite (issue 35: a NaN in epochs.jsonl turned a report cell of 44 runs into "nan")
    "nan": lambda b: _objects(b, lambda o: _keep_version(o, _non_finite(math.nan))) or b"NaN\n",
    "inf": lambda b: _objects(b, lambda o: _keep_version(o, _non_finite(-math.inf))) or b"-Infinity\n",
}


def base_run(root: Path):
    """The tiny run every case starts from (a few seconds, once per test module)."""
    from core.store.runs import RunStore
    from core.train.trainer import Trainer
    from tests.conftest import tiny_config
    from tests.core.train.test_trainer import StopAfter

    cfg = tiny_config(name="base", epochs=2, max_train_images=64, max_test_images=32, channels_last="off",
                      log_every=1)
    run = RunStore(root).create(cfg)
    assert Trainer(run, stop_event=StopAfter(4)).run() == "stopped"
    assert {p.name for p in run.path.iterdir()} >= set(FILES) - {"request", "queue.json"}
    return run


def case_id(name: str, damage: str) -> str:
    return f"{name.replace('.', '_')}-{damage}"


def corrupt_store(base: Path, root: Path, outside: Path) -> dict[str, tuple[str, str]]:
    """One copy of ``base`` per (file, damage) in ``root``; returns run id -> (file, damage). Links point at the
    file ``outside`` (outside the runs folder)."""
    outside.write_bytes(OUTSIDE_TEXT)
    cases = {}
    for name in FILES:
        for damage, change in DAMAGE.items():
            rid = case_id(name, damage)
            folder = root / rid
            shutil.copytree(base, folder)
            path = folder / name
            original = path.read_bytes() if path.exists() else b'{"state": "stopped"}\n'
            if name == "queue.json":          # a queued run, whose queue.json the scheduler would read
                original = QUEUE_ENTRY
                status = json.loads((folder / "status.json").read_text())
                (folder / "status.json").write_text(json.dumps({**status, "state": "queued"}))
            if path.exists():
                path.unlink()
            if damage == "directory":
                path.mkdir()
            elif damage == "symlink":
                os.symlink(outside, path)
            elif (data := change(original)) is not None:
                path.write_bytes(data)
            cases[rid] = (name, damage)
    return cases


def expected_state(name: str, damage: str) -> str:
    """How the run must be listed: damaged where ResLab reads the file to list a run, or where a file is a link or a
    directory; otherwise its true state (the base is stopped)."""
    if damage == "missing":     # a run that has trained without its checkpoint is damaged (resume would start over)
        return {"config.json": "damaged", "status.json": "damaged", "checkpoint.pt": "damaged",
                "queue.json": "queued"}.get(name, "stopped")
    if damage in ("directory", "symlink") or name in ("config.json", "status.json", "queue.json"):
        return "damaged"
    if name == "epochs.jsonl":
        return "stopped" if damage in ("empty", "truncated") else "damaged"
    return "stopped"


def repairable(name: str, damage: str) -> bool:
    """Damage that `resume --repair` can rebuild from checkpoint.pt (content, not a link or a directory)."""
    return expected_state(name, damage) == "damaged" and damage not in ("directory", "symlink") and \
        name != "queue.json" and not restartable(name, damage)


def restartable(name: str, damage: str) -> bool:
    """A run that has trained whose checkpoint.pt is gone: `resume --repair` starts it over from step 0."""
    return name == "checkpoint.pt" and damage == "missing"


def unqueued(name: str, damage: str) -> bool:
    """A queued run whose queue.json's content is damaged: `resume` trains it as it is (no repair needed)."""
    return name == "queue.json" and damage not in ("directory", "symlink")
