"""Value conversion between readings, declared property types, twin strings and desired values.

Rules (also in docs/properties.md):
- Twin strings must match EdgeCore's `^[a-zA-Z0-9-_.,:/@#]{1,512}$`.
- FLOAT/DOUBLE: fixed point, at most 3 decimals, trailing zeros stripped, never an exponent,
  "-0" becomes "0"; NaN and infinities are refused (ValueError), never reported.
- INT: floats are rounded half-to-even (Python's `round`: 2.5 -> 2, 3.5 -> 4; no upward bias over
  many samples); integers outside the signed 64-bit range are refused (EdgeCore's ValidateValue
  parses INT twins with ParseInt(v, 10, 64)).
- BOOLEAN: "true" / "false".
- STRING: every character outside the charset becomes "_", the result is cut to 512 characters, and
  an empty string is reported as "none" (EdgeCore rejects empty values).
"""

from __future__ import annotations

import math
import re

TWIN_VALUE = re.compile(r"[a-zA-Z0-9\-_.,:/@#]{1,512}")
MAX_TWIN_LENGTH = 512
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # EdgeCore checks INT twins with strconv.ParseInt(v, 10, 64)
EMPTY_STRING_TWIN = "none"
NUMERIC_TYPES = ("INT", "FLOAT", "DOUBLE")
SUPPORTED_TYPES = ("INT", "FLOAT", "DOUBLE", "STRING", "BOOLEAN")
TRUE_WORDS = ("true", "1", "on")
FALSE_WORDS = ("false", "0", "off")

DEFAULT_CYCLE_MS = 1000
MAX_CYCLE_MS = 3_600_000  # 1 h
NANOSECOND_LOOKING_MS = 1_000_000_000  # 1e6 * 1000: a 1 s cycle written in nanoseconds

_OUTSIDE_CHARSET = re.compile(r"[^a-zA-Z0-9\-_.,:/@#]")

Value = int | float | str | bool


def _type_name(type_: str) -> str:
    """Upper-cased type name, refused unless the mapper can produce it."""
    name = type_.strip().upper()
    if name not in SUPPORTED_TYPES:
        raise ValueError(f"unsupported property type {type_!r}; use one of {', '.join(SUPPORTED_TYPES)}")
    return name


def fixed_point(value: float) -> str:
    """A finite float as fixed-point text with at most 3 decimals and no trailing zeros."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} cannot be reported: not a finite number")
    formatted = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if formatted in ("-0", "") else formatted


def _parse_bool(text: str) -> bool | None:
    """true/false/1/0/on/off (any case) as bool, anything else None."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def coerce_reading(value: Value, type_: str) -> Value:
    """A reading converted to the declared property type (raises ValueError when impossible).

    INT rounds floats half-to-even; BOOLEAN is true for any nonzero number; STRING renders bools
    as true/false and floats in fixed point (so 1e20 never becomes "1e+20").
    """
    name = _type_name(type_)
    if name == "STRING":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return fixed_point(value) if math.isfinite(value) else str(value)
        return str(value)
    if name == "BOOLEAN":
        if isinstance(value, str):
            parsed = _parse_bool(value)
            if parsed is None:
                raise ValueError(f"{value!r} is not a boolean")
            return parsed
        return value != 0
    if name == "INT" and isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        number = _parse_number(value, "value")
    else:
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"integer with {len(str(value))} digits does not fit a {name}") from None
    if name == "INT":
        if not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        return round(number)
    return number


def format_twin(value: Value, type_: str) -> str:
    """Text for a twin's reported value, guaranteed to match EdgeCore's value charset."""
    coerced = coerce_reading(value, type_)
    if isinstance(coerced, bool):
        return "true" if coerced else "false"
    if isinstance(coerced, int):
        if not INT64_MIN <= coerced <= INT64_MAX:
            raise ValueError(f"integer {coerced} does not fit the 64 bits EdgeCore parses INT twins into")
        return str(coerced)
    if isinstance(coerced, float):
        text = fixed_point(coerced)
        if len(text) > MAX_TWIN_LENGTH:
            raise ValueError(f"number {coerced!r} is longer than a twin value may be")
        return text
    cleaned = _OUTSIDE_CHARSET.sub("_", coerced)[:MAX_TWIN_LENGTH]
    return cleaned or EMPTY_STRING_TWIN


def _parse_number(text: str, what: str) -> float:
    """A finite decimal number from text, or ValueError naming `what`."""
    try:
        number = float(text.strip())
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what}: {text!r} is not a finite number")
    return number


def parse_desired(text: str, type_: str, what: str = "value") -> Value:
    """A desired value (twin text) parsed to the property type; ValueError says what is wrong.

    INT accepts integral decimals ("30", "30.0"), FLOAT/DOUBLE any finite decimal, BOOLEAN only
    true/false/1/0/on/off (any case), STRING the text unchanged.
    """
    name = _type_name(type_)
    if name == "STRING":
        return text
    if name == "BOOLEAN":
        parsed = _parse_bool(text)
        if parsed is None:
            raise ValueError(f"{what}: {text!r} is not a boolean (use true/false, 1/0 or on/off)")
        return parsed
    number = _parse_number(text, what)
    if name == "INT":
        if not number.is_integer():
            raise ValueError(f"{what}: {text!r} is not an integer")
        return int(number)
    return number


def validate_cycle_ms(value: int, what: str) -> tuple[int, str | None]:
    """A usable collect/report cycle in ms and an optional warning explaining any correction.

    0 means the 1 s default; negative values fall back to it; values of 1e9 or more look like the
    nanosecond-sized numbers some upstream samples use and are divided by 1e6; anything above one
    hour is capped at one hour.
    """
    cycle = int(value)
    if cycle == 0:
        return DEFAULT_CYCLE_MS, None
    if cycle < 0:
        return DEFAULT_CYCLE_MS, f"{what}: negative cycle {cycle} ms, using {DEFAULT_CYCLE_MS} ms"
    notes: list[str] = []
    if cycle >= NANOSECOND_LOOKING_MS:
        converted = cycle // 1_000_000
        notes.append(f"{what}: {cycle} looks like nanoseconds, using {converted} ms")
        cycle = converted
    if cycle > MAX_CYCLE_MS:
        notes.append(f"{what}: cycle {cycle} ms is longer than one hour, using {MAX_CYCLE_MS} ms")
        cycle = MAX_CYCLE_MS
    return cycle, "; ".join(notes) or None
