"""What a row of the run index holds (core/store/index.py): a run's summary as its files say it, in JSON, and for a
run whose row is stored settled its line of `runs` output; and the versions that say which code may use them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from pathlib import Path

try:
    import orjson
except ImportError:          # optional: json alone reads and writes the same rows
    orjson = None

from core.spec.config import RunConfig
from core.store.info import RunInfo, epoch_tally, order_key, run_summary_row

_FIELDS = {f.name: f.default for f in fields(RunConfig)}
_TUPLES = {name for name, default in _FIELDS.items() if isinstance(default, tuple)}
_LISTED = {name: list(d) if name in _TUPLES else d for name, d in _FIELDS.items()}    # as config.to_dict() says them
# a row is only good for the code that wrote it: the layout of RunInfo and RunConfig, and the settings' defaults (a row
# keeps only the settings that differ from them), are part of the version
VERSION = "7:" + hashlib.sha1(repr(sorted(_LISTED.items())).encode()).hexdigest()[:12]
# a row's summary line is used only by the code that made it (``summary_line``): a digest of that code, kept with the
# line. Another release's line is made afresh from the row and replaces it (an upgrade lists at full speed from its
# second listing), never a rebuild: two releases sharing a runs folder rewrite lines, not each other's rows
_LISTING_CODE = ("core/store/info.py", "core/store/rules.py", "core/store/index_rows.py", "core/spec/config.py",
                 "core/spec/archs.py", "core/util/formatting.py")


def _lines_version() -> str:
    digest = hashlib.sha1(VERSION.encode())
    root = Path(__file__).resolve().parents[2]
    for name in _LISTING_CODE:
        try:
            digest.update((root / name).read_bytes())
        except OSError:             # (run from somewhere its sources are not: the version alone)
            digest.update(name.encode())
    return digest.hexdigest()[:16]


LINES_VERSION = _lines_version()


def _config_from(data: dict | None) -> RunConfig | None:
    """A RunConfig from a row written by this version (validated when it was read from config.json): set field by
    field, ~30x faster than ``RunConfig.from_dict``, which ten thousand rows would pay on every listing."""
    if data is None:
        return None
    cfg = object.__new__(RunConfig)
    values = {**_FIELDS, **data}
    for name in _TUPLES:
        values[name] = tuple(values[name])
    cfg.__dict__.update(values)
    return cfg


def row_text(info: RunInfo, settled: bool) -> str:
    """The run's summary as a row: its settings where they differ from the defaults, and of epochs.jsonl only what
    lists need (``epoch_tally``; a 164-epoch run's rows would make the row 40 KB and the index 400 MB)."""
    config = None if info.config is None else \
        {k: v for k, v in info.config.to_dict().items() if not (type(v) is type(d := _LISTED.get(k)) and v == d)}
    return json.dumps({"state": info.state, "config": config, "status": info.status,
                       "tally": epoch_tally(info.epochs), "notes": info.notes, "damaged": info.damaged,
                       "repairable": info.repairable,
                       "restartable": info.restartable, "job": info.job, "settled": settled}, allow_nan=True)


def json_line(row: dict) -> str:
    """A dict of plain values as one line of JSON, as `runs --format json` writes each run: by orjson where it is
    installed, else by json (non-ASCII escaped)."""
    return orjson.dumps(row, default=str).decode() if orjson is not None else json.dumps(row, default=str)


def summary_line(info: RunInfo) -> str:
    """The run's ``run_summary_row`` as a ``json_line``. The index keeps it for a run whose row is stored settled, so
    a listing of ten thousand such runs makes no RunInfo at all."""
    return json_line(run_summary_row(info))


def entry(info: RunInfo) -> tuple[tuple[float, str], str]:
    return order_key(info), summary_line(info)


def loads(text: str) -> dict:
    """A row, or a ``json_line``: orjson where installed (a listing of ten thousand rows decodes 2x faster), json
    for a row it refuses (NaN or Infinity, which json writes and orjson does not read)."""
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def info_of(run_id: str, path: Path, text: str) -> tuple[RunInfo, bool]:
    """The row's RunInfo, and whether it is settled already."""
    d = loads(text)
    tally = d["tally"]     # no rows: none was read (a damaged run's reading stops at its first bad file), none to read
    info = RunInfo(run_id, path, d["state"], _config_from(d["config"]), d["status"], None if tally["count"] else [],
                   d["damaged"], d["repairable"], d["job"], restartable=d["restartable"], tally=tally,
                   notes=d["notes"])
    return info, d["settled"]
