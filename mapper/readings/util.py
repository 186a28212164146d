"""Defensive accessors shared by the jtop-sample normalisers (garbage in -> None out)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

Reading = float | int | str | bool
Out = dict[str, Reading]

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-]")


def mapping(value: object) -> Mapping[str, Any] | None:
    """`value` if it is a mapping, else None."""
    return value if type(value) is dict or isinstance(value, Mapping) else None  # the ABC check is slow


def sequence(value: object) -> Sequence[Any] | None:
    """`value` if it is a list or tuple, else None (strings are not sequences here)."""
    return value if isinstance(value, list | tuple) else None


def number(value: object) -> float | None:
    """A finite int/float as float; bools, strings, NaN and infinities give None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def integer(value: object) -> int | None:
    """An integral number as int (floats are rounded half-to-even), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    as_float = number(value)
    return None if as_float is None else round(as_float)


def flag(value: object) -> bool | None:
    """A real bool, else None."""
    return value if isinstance(value, bool) else None


def text(value: object) -> str | None:
    """A non-empty, stripped string, else None."""
    if not isinstance(value, str):
        return None
    stripped = value.strip()
    return stripped or None


def key_part(name: object) -> str | None:
    """A board-given name usable as one dotted key segment: unsafe characters become '_'."""
    if isinstance(name, bool) or not isinstance(name, str | int):
        return None
    cleaned = _UNSAFE_KEY_CHARS.sub("_", str(name).strip())
    return cleaned or None


def put(out: Out, key: str, value: Reading | None) -> None:
    """Store `value` under `key` unless it is None."""
    if value is not None:
        out[key] = value


def divided(value: object, divisor: float) -> float | None:
    """A finite number divided by `divisor` (mW -> W keeps 5133 -> 5.133 exact in decimal), else None."""
    as_float = number(value)
    return None if as_float is None else as_float / divisor


def scaled_int(value: object, factor: int) -> int | None:
    """An integral reading multiplied by an integer `factor` (kHz -> Hz, kB -> bytes), else None."""
    as_int = integer(value)
    return None if as_int is None else as_int * factor
