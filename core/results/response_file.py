"""layer_responses.json, the layer responses of Fig. 7 computed from a run's checkpoint (core/results/responses.py
computes them with torch): read without torch, for the screens that show them (screens/run_files.py) and `show`."""
from __future__ import annotations

from pathlib import Path

from core.store import reader
from core.store.runs import Run

FILE_NAME = "layer_responses.json"
_LAYER_FIELDS = {"index": "count", "name": "text", "std": "real"}   # NaN/inf: weights not finite


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_layer_responses(run: Run) -> dict | None:
    """The stored responses when they belong to the current checkpoint.pt, else None."""
    path = run.path / FILE_NAME
    try:
        data = reader.read_object(path)       # never through a link; anything but a JSON object is damage
        layers = data.get("layers")
        if data.get("checkpoint") == _stamp(run.checkpoint_path) and isinstance(layers, list) and not any(
                reader.problem(layer, _LAYER_FIELDS, tuple(_LAYER_FIELDS)) for layer in layers):
            return data
    except (OSError, ValueError):
        pass
    return None
