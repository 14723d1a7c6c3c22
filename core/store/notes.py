"""A run's tags and note: what a person says about a run (``best``, ``baseline``; "lr too high, see epoch 3"), kept in
its folder as notes.json ({"tags": [...], "note": "..."}), replaced atomically and never through a link.

Set from the detail screen (t) and the CLI (``tui_app.py note RUN [TEXT] [--tag T] [--untag T]``); the runs filter
selects by them (``tag=best``, ``note=unstable``). Neither changes what the run learns or how it resumes: a missing,
unreadable or damaged notes.json reads as no tags and no note.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from core.util.files import atomic_write_json, read_bytes

NOTES_FILE = "notes.json"
MAX_NOTE = 2000
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,31}")


def read_notes(run_path: Path | str) -> dict[str, Any]:
    """{"tags": [str, ...], "note": str} of the run in ``run_path``; empty ones when there is none or it is bad."""
    try:
        data = json.loads(read_bytes(Path(run_path) / NOTES_FILE))
    except (OSError, ValueError):
        return {"tags": [], "note": ""}
    if not isinstance(data, dict):
        return {"tags": [], "note": ""}
    tags = [t for t in data.get("tags", []) if isinstance(t, str) and TAG.fullmatch(t)] \
        if isinstance(data.get("tags"), list) else []
    note = data.get("note") if isinstance(data.get("note"), str) else ""
    return {"tags": tags, "note": note}


def tag_problem(tag: str) -> str | None:
    """Why ``tag`` cannot be a tag (None when it can): one word of letters, digits, '.', '_', '+' or '-'."""
    if TAG.fullmatch(tag):
        return None
    return (f"tag {tag!r}: one word of up to 32 letters, digits, '.', '_', '+' or '-' (not starting with a "
            f"symbol)")


def write_notes(run_path: Path | str, tags: list[str] | None = None, note: str | None = None) -> dict[str, Any]:
    """Replace the run's tags and/or note (None keeps what is there); returns what is stored now. Raises ValueError
    for a bad tag or a note too long, OSError when the folder cannot be written."""
    current = read_notes(run_path)
    if tags is not None:
        for tag in tags:
            if problem := tag_problem(tag):
                raise ValueError(problem)
        current["tags"] = list(dict.fromkeys(tags))
    if note is not None:
        note = " ".join(note.split())       # one line: it is shown in a one-line summary
        if len(note) > MAX_NOTE:
            raise ValueError(f"a note is at most {MAX_NOTE} characters, got {len(note)}")
        current["note"] = note
    atomic_write_json(Path(run_path) / NOTES_FILE, current)
    return current
