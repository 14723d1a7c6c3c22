"""Turning JSON, TOML and CLI text into a RunConfig field's type, with a message naming what was expected."""
from __future__ import annotations

import re
from typing import Any


def coerce(kind: str, value: Any) -> Any:  # noqa: C901 (one branch per field type)
    """``value`` as a field of type ``kind`` ("int", "float", "bool", "str", "tuple[int, ...]"); TypeError or
    ValueError naming what was expected."""
    if kind == "tuple[int, ...]":
        if isinstance(value, str):
            parts = [p for p in re.split(r"[,\s]+", value.strip()) if p]
            value = parts
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list of integers such as 51,75, got {value!r}")
        try:
            return tuple(to_int(v) for v in value)
        except ValueError:
            raise ValueError(f"expected a list of integers such as 51,75, got {value!r}") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise TypeError(f"expected true or false, got {value!r}")
    if kind == "int":
        try:
            return to_int(value)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if kind == "float":
        if isinstance(value, bool):
            raise TypeError(f"expected a number, got {value!r}")
        try:
            if isinstance(value, str) and not value.isascii():    # float("٠.١") is 0.1: a digit of another script
                raise ValueError(value)
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value.strip()


def to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isascii():                  # int("٣") is 3: a digit of another script
        s = value.strip().lower().replace("_", "")
        mult = 1
        if s.endswith("k"):
            s, mult = s[:-1], 1000
        f = float(s)
        if f.is_integer() or mult > 1:
            return int(round(f * mult))
    raise ValueError(value)
