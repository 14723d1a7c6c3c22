"""What each file of a run folder may hold, checked as it is read: the one tolerant reader of run files.

``core.store.runs.Run`` reads every file through this module. Content that is not what ResLab writes (JSON that is not
an object, a string where a number belongs, a missing key, bytes that are not UTF-8, a directory or a symbolic
link in a file's place) raises ``DamagedFileError`` (a ValueError) or ``NotAFileError`` (an OSError) naming the
file and what is wrong; ``Run.info()`` turns either into a "damaged" run, so no view ever meets a surprise.
Unknown keys are left alone (a newer ResLab may add some); known keys must have their type.
"""
from __future__ import annotations

import json
import math
import os
import stat
import unicodedata
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.spec.config import SCHEMA_VERSION, ConfigError, RunConfig
from core.util.files import MAX_ROWS_BYTES, jsonl_lines, kind_of, open_regular, read_bytes, size_text
from core.util.formatting import number_text

# Every file a run folder may hold; none may be a link or a directory.
RUN_FILES = ("config.json", "status.json", "epochs.jsonl", "steps.jsonl", "checkpoint.pt", "best.pt", "events.log",
             "request", "lock", "process.log", "queue.json", "layer_responses.json")
_RUN_FILE_SET = frozenset(RUN_FILES)
# The files only the holder of the run's writer lock replaces (their stale temp files are removed when it is taken).
LOCKED_FILES = ("config.json", "status.json", "epochs.jsonl", "steps.jsonl", "checkpoint.pt", "best.pt")
REQUESTS = ("stop", "pause", "continue")


class DamagedFileError(ValueError):
    """A run file whose content ResLab did not write; the message names the file and the problem."""


# -- the types of the known keys ---------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    """A finite number: NaN or infinity in a run file is damage (ResLab never writes one; a run that diverges ends
    before it would), never a value that turns a group's statistic into nan."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (
        math.isfinite(v) if isinstance(v, float) else abs(v) < 2 ** 1000)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 1000


TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "number": (_is_number, "a number"), "count": (_is_count, "a whole number >= 0"),
    "real": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),   # NaN and inf too
    "text": (lambda v: isinstance(v, str), "text"), "bool": (lambda v: isinstance(v, bool), "true or false"),
    "object": (lambda v: isinstance(v, dict), "an object"), "list": (lambda v: isinstance(v, list), "a list"),
}


def _fields(kind: str, *names: str) -> dict[str, str]:
    return {name: kind for name in names}


STATUS_FIELDS = {
    **_fields("text", "state", "host", "device", "precision", "precision_note", "error", "compile_mode",
              "compile_stop"),
    **_fields("count", "epoch", "step", "total_epochs", "total_steps", "iters_per_epoch", "pid", "micro_batches",
              "seed"),
    **_fields("number", "created_at", "updated_at", "started_at", "finished_at", "elapsed_s", "images_per_s", "eta_s",
              "lr", "last_loss", "last_err", "last_test_err", "best_test_err", "epoch_s", "peak_mem_bytes",
              "reserved_mem_bytes", "compile_s"),
    **_fields("bool", "channels_last", "deterministic", "compiling", "in_queue"), "env": "object", "data": "object",
}
EPOCH_FIELDS = {"epoch": "count", "step": "count",
                **_fields("number", "train_loss", "train_err", "test_loss", "test_err", "val_loss", "val_err", "lr",
                          "seconds", "eval_seconds", "images_per_s", "peak_mem_bytes",
                          "reserved_mem_bytes")}
STEP_FIELDS = {"step": "count", "epoch": "count", **_fields("number", "loss", "err", "lr")}
QUEUE_FIELDS = {**_fields("number", "position", "added_at"), **_fields("count", "launches", "retries", "pid"),
                **_fields("bool", "oom_retried", "settled"), **_fields("text", "device", "slot")}
SCHEDULER_FIELDS = {**_fields("count", "pid", "retries"), **_fields("number", "updated_at", "idle_exit_s"),
                    "host": "text", "stay": "bool", "devices": "list", "slots": "list"}
SLOT_FIELDS = {"slot": "text", "device": "text", "run": "text"}
ROWS = {"epochs.jsonl": (EPOCH_FIELDS, "epoch"), "steps.jsonl": (STEP_FIELDS, "step")}


# what JSON gives each kind of key, in the common case (a float, an int that is not huge, ...): checked first
_HUGE = 2 ** 1000
_PLAIN = {"number": (float,), "count": (), "text": (str,), "bool": (bool,), "object": (dict,), "list": (list,),
          "real": (float,)}


def problem(obj: Any, fields: dict[str, str], required: tuple[str, ...] = ()) -> str:
    """What is wrong with one JSON object ("" when nothing): not an object, a required key missing, a known key
    of the wrong type (None is allowed for keys that are not required)."""
    # the keys the object has, each by its type first (2,000 runs' rows are checked on every `runs`); the full check
    # in the fields' order only when one looks wrong, so the message names the same key as ever
    if isinstance(obj, dict) and all(name in obj for name in required) and _looks_right(obj, fields, required):
        return ""
    return full_problem(obj, fields, required)


def _looks_right(obj: dict, fields: dict[str, str], required: tuple[str, ...]) -> bool:
    for name, value in obj.items():
        kind = fields.get(name)
        if kind is None or (value is None and name not in required):
            continue
        if type(value) in _PLAIN[kind] and (kind != "number" or value - value == 0):   # (NaN, inf: not 0)
            continue
        if type(value) is int and kind in ("number", "count") and -_HUGE < value < _HUGE and (
                kind == "number" or value >= 0):
            continue
        if not TYPES[kind][0](value):
            return False
    return True


def full_problem(obj: Any, fields: dict[str, str], required: tuple[str, ...] = ()) -> str:
    """``problem`` the slow way: every known field, in the fields' order (what names the key in a message)."""
    if not isinstance(obj, dict):
        return f"holds {short(obj)}, not an object"
    for name in required:
        if name not in obj:
            return f"has no {name!r}"
    for name, kind in fields.items():
        value = obj.get(name)
        if value is None and name not in required:
            continue
        test, what = TYPES[kind]
        if not test(value):
            return f"{name!r} is {short(value)}, not {what}"
    return ""


def short(value: Any, limit: int = 40) -> str:
    """A value for a message: its JSON text, escaped and cut ('[1, 2]', '"three"', '1e+300')."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 10 ** 15:
        return number_text(value)
    text = escape_controls(json.dumps(value, default=str, ensure_ascii=False))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- readers -----------------------------------------------------------------------------------------------------------
def read_object(path: Path) -> dict:
    """A JSON object file (config.json, status.json)."""
    data = read_bytes(path)
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DamagedFileError(f"{path.name} is unreadable (not UTF-8 text: byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:   # RecursionError: absurdly nested brackets
        raise DamagedFileError(f"{path.name} is unreadable ({exc})") from None
    if not isinstance(obj, dict):
        raise DamagedFileError(f"{path.name} is unreadable (it holds {short(obj)}, not an object)")
    return obj


def read_status(path: Path) -> dict:
    status = read_object(path)
    why = problem(status, STATUS_FIELDS, ("state",))
    if why:
        raise DamagedFileError(f"{path.name} {why}")
    return status


def read_queue_entry(path: Path) -> dict:
    """queue.json (core/serve/queue.py): an object whose known keys have their types."""
    entry = read_object(path)
    why = problem(entry, QUEUE_FIELDS, ("added_at",))
    if why:
        raise DamagedFileError(f"{path.name} {why}")
    return entry


def read_scheduler_state(path: Path) -> dict:
    """scheduler.json (core/serve/scheduler.py): pid, host, devices (text), slots ({slot, device, run}) ..."""
    state = read_object(path)
    why = problem(state, SCHEDULER_FIELDS)
    why = why or next((f"devices holds {short(d)}, not text" for d in state.get("devices") or []
                       if not isinstance(d, str)), "")
    why = why or next((f"a slot {p}" for p in (problem(s, SLOT_FIELDS, ("slot",)) for s in state.get("slots") or [])
                       if p), "")
    if why:
        raise DamagedFileError(f"{path.name} {why}")
    return state


def read_config(path: Path) -> RunConfig:
    """config.json as a RunConfig that passes validation (an invalid one is damage, not something to run)."""
    data = read_object(path)
    version = data.get("schema_version")
    if not _is_count(version):
        raise DamagedFileError(f"{path.name} is unreadable (no schema_version: not written by ResLab)")
    if version > SCHEMA_VERSION:
        raise DamagedFileError(f"{path.name} has schema_version {version}, newer than this ResLab reads "
                               f"({SCHEMA_VERSION}): update ResLab")
    try:
        cfg = RunConfig.from_dict(data, strict=False)
    except ConfigError as exc:
        raise DamagedFileError(f"{path.name} has an unreadable setting ({_first(exc.errors)})") from None
    except (TypeError, ValueError) as exc:
        raise DamagedFileError(f"{path.name} has an unreadable setting ({exc})") from None
    errors = cfg.validate()
    if errors:
        raise DamagedFileError(f"{path.name} has an invalid setting ({_first(errors)})")
    return cfg


def _first(errors: dict[str, str]) -> str:
    """The first of several field errors, and how many more there are."""
    (name, message), more = next(iter(errors.items())), len(errors) - 1
    text = escape_controls(f"{name}: {message}")
    return (text if len(text) <= 200 else text[:199] + "…") + (f"; and {more} more" if more else "")


def read_rows(path: Path, tolerant: bool = False) -> tuple[list[dict], int]:
    """The rows of epochs.jsonl or steps.jsonl, each checked; ([], 0) when the file is missing. A row that is not
    what ResLab writes raises DamagedFileError, or with ``tolerant`` is dropped and counted (the second value)."""
    fields, key = ROWS[path.name]
    try:
        data = read_bytes(path, MAX_ROWS_BYTES)
    except FileNotFoundError:
        return [], 0
    try:
        lines = jsonl_lines(data, path.name)
    except ValueError as exc:
        if not tolerant:
            raise DamagedFileError(str(exc)) from None
        lines = _good_lines(data)
    rows, dropped = [], 0
    for number, row in lines:
        why = problem(row, fields, (key,)) if row is not None else "is unreadable"
        if why:
            if not tolerant:
                raise DamagedFileError(f"{path.name}: line {number} {why}")
            dropped += 1
            continue
        rows.append(row)
    return rows, dropped


def _good_lines(data: bytes) -> list[tuple[int, Any]]:
    """Every line of damaged .jsonl bytes, parsed where possible (None where not)."""
    out = []
    for i, raw in enumerate(data.split(b"\n")):
        if raw.strip():
            try:
                out.append((i + 1, json.loads(raw.decode("utf-8"))))
            except (ValueError, RecursionError):
                out.append((i + 1, None))
    return out


def read_log(path: Path, tail: int | None = None) -> list[str]:
    """events.log's lines (the last ``tail``), control characters escaped: a terminal never receives raw bytes from
    a run folder."""
    try:
        data = read_bytes(path, MAX_ROWS_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [escape_controls(line) for line in (lines[-tail:] if tail else lines)]


def read_request(path: Path) -> str | None:
    """'stop', 'pause' or 'continue'; None when there is no request or it is none of these."""
    try:
        text = read_bytes(path, 64).decode("ascii", errors="replace").strip()
    except (OSError, ValueError):
        return None
    return text if text in REQUESTS else None


def escape_controls(text: str) -> str:
    """Control and format characters (escape sequences, bidi overrides) as visible escapes; tabs become spaces."""
    if text.isprintable():
        return text
    return "".join(c if unicodedata.category(c)[0] != "C" else (" " if c == "\t" else c.encode("unicode_escape")
                                                                     .decode("ascii")) for c in text)


TOO_LARGE_SUFFIX = ".too-large"


def steps_too_large(path: Path) -> str:
    """'' unless steps.jsonl (at ``path``) holds more than ResLab ever writes there, which it never reads (a file
    that large must not fill the memory): then why, and what `resume --repair` does about it."""
    try:
        size = os.lstat(path).st_size
    except OSError:
        return ""
    if size <= MAX_ROWS_BYTES:
        return ""
    return (f"{path.name} is larger than {size_text(MAX_ROWS_BYTES)}, more than ResLab writes there; resume --repair "
            f"moves it aside to {path.name}{TOO_LARGE_SUFFIX} (its epochs and checkpoint stay; the curves start again)")


# -- the folder --------------------------------------------------------------------------------------------------------
def folder_problem(path: Path) -> str:
    """"" for a run folder whose files are all regular files (or missing); else what is wrong, e.g. 'lock is a
    directory, not a file ... remove it'. A run folder that is itself a link is refused too."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return "the run folder is a symbolic link (ResLab never follows links in the runs folder)"
    except OSError as exc:
        return f"the run folder cannot be read ({exc.strerror})"
    try:        # one listing of the folder instead of a look at each of the 12 names (2,000 runs: 24,000 calls)
        with os.scandir(path) as entries:
            present: dict[str, os.DirEntry] | None = {e.name: e for e in entries if e.name in _RUN_FILE_SET}
    except OSError:
        present = None                  # a folder that can be searched but not listed: a look at each name
    for name in RUN_FILES:
        try:
            if present is None:
                mode = os.lstat(path / name).st_mode
            elif name not in present or present[name].is_file(follow_symlinks=False):
                continue
            else:
                mode = present[name].stat(follow_symlinks=False).st_mode
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror})"
        if not stat.S_ISREG(mode):
            kind = kind_of(mode)
            why = "ResLab never follows links in a run folder" if kind == "symbolic link" else "ResLab cannot use it"
            return f"{name} is a {kind}, not a file ({why}): remove it"
    return ""


def checkpoint_looks_whole(path: Path) -> bool:
    """A cheap look at checkpoint.pt without loading it: a regular file that is a whole torch zip archive (its
    directory is at the end, so a torn or foreign file fails). Loading it stays ``core.train.checkpoint``'s job."""
    try:
        fd = open_regular(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "rb") as fh, zipfile.ZipFile(fh) as archive:
            return any(name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False
