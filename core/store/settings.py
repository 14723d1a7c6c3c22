"""Small per-user files outside the runs folder: the new-run form's last settings and measured facts of a machine.

Where (platformdirs, the usual place on each system): settings in the user's config folder
(``~/.config/reslab/`` on Linux), caches in the user's cache folder (``~/.cache/reslab/``).
``$RESLAB_CONFIG_DIR`` and ``$RESLAB_CACHE_DIR`` put them elsewhere (the tests use temporary folders).

Both are conveniences: a file that is missing, unreadable or from another version reads as empty, and a failure
to write one is ignored (a read-only home must never stop training or the app).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from core.util.files import atomic_write_json, read_bytes

APP_NAME = "reslab"
FORM_FILE = "form.json"


def config_dir() -> Path:
    env = os.environ.get("RESLAB_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME))


def cache_dir() -> Path:
    env = os.environ.get("RESLAB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} when missing, unreadable or not an object."""
    try:
        data = json.loads(read_bytes(Path(path)))      # at most 1 MB, never through a link
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any]) -> bool:
    """Write atomically, creating the folder; False (and nothing raised) when it cannot be written."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(path), data)
        return True
    except OSError:
        return False


def load_form_settings() -> dict[str, Any]:
    """The form's last values: {"preset": ..., "where": ..., "fields": {field: text}}; {} when none."""
    return read_json(config_dir() / FORM_FILE)


def save_form_settings(settings: dict[str, Any]) -> bool:
    return write_json(config_dir() / FORM_FILE, settings)


SETTINGS_FILE = "settings.json"


def load_settings() -> dict[str, Any]:
    """The user's settings (``settings.json`` in the config folder, edited by hand): {"on_end": "shell command"}
    (core/serve/on_end.py); {} when none."""
    return read_json(config_dir() / SETTINGS_FILE)
