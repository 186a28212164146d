"""One config section read into typed values: problems are collected, never raised, and unknown keys are caught.

Rules every section follows (README, "Configuration"):
- numbers are YAML numbers, finite, never quoted strings (a key may opt in to quoted integers, as mapper-framework's
  `common.http_port` is a string in the Go mapper's config);
- flags are YAML booleans;
- a key the section does not know is a problem with a did-you-mean, or only a warning in the sections that belong
  to mapper-framework (other mappers' configs carry keys we do not use).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from typing import Any

MAX_SECONDS = 3600.0  # upper bound of every duration in every section: longer waits overflow the timers (1e300 s)
_MISSING = object()


def unknown_key_message(key: object, known: Collection[str], what: str = "key") -> str:
    """'unknown key; did you mean 'x'?' when a known key is close, else 'unknown key (known: a, b)'."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    if close:
        return f"unknown {what}; did you mean {close[0]!r}?"
    return f"unknown {what} (known: {', '.join(sorted(known))})"


def as_sentence(message: str) -> str:
    """A message for the sections whose problems end with a full stop (a did-you-mean question keeps its mark)."""
    return message if message.endswith("?") else f"{message}."


def unknown_keys(raw: Mapping[Any, Any], known: Collection[str], what: str = "key") -> list[tuple[str, str]]:
    """(key, message) for every key of `raw` outside `known`, in the file's order."""
    return [(str(key), unknown_key_message(key, known, what)) for key in raw if key not in known]


def _shown(value: Any) -> str:
    """A value as a problem sentence shows it."""
    return repr(value) if not isinstance(value, float) else str(value)


def _quoted_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


class Section:
    """Typed access to one mapping of a config file; call finish() once every key has been read."""

    def __init__(self, name: str, raw: Any, problems: list[str], warnings: list[str] | None = None,
                 lenient: bool = False) -> None:
        self.name = name
        self.problems = problems
        self.warnings = warnings
        self.lenient = lenient
        self.known: set[str] = set()
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.append(f"{name}: must be a mapping, got {type(raw).__name__}")
            raw = {}
        self.raw: Mapping[Any, Any] = raw

    def problem(self, key: str, message: str) -> None:
        """Record one problem about `<section>.<key>`."""
        self.problems.append(f"{self.name}.{key}: {message}")

    def value(self, key: str) -> Any:
        """The raw value of a key the caller checks itself (None when absent); the key counts as known."""
        self.known.add(key)
        return self.raw.get(key)

    def _present(self, key: str) -> Any:
        value = self.value(key)
        return _MISSING if value is None else value

    def text(self, key: str, default: str) -> str:
        """A string (a bare number such as a version 1.0 is taken as its text)."""
        value = self._present(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(key, f"expected a string, got {_shown(value)}")
            return default
        return str(value)

    def number(self, key: str, default: float, minimum: float | None = None, positive: bool = False,
               maximum: float | None = None) -> float:
        """A finite number, at least `minimum` (or above 0 when positive), at most `maximum`."""
        value = self._present(key)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._wrong_type(key, "a number", value)
            return default
        if not math.isfinite(value):
            self.problem(key, f"expected a finite number, got {_shown(value)}")
            return default
        if positive and value <= 0:
            self.problem(key, f"must be > 0, got {_shown(value)}")
            return default
        if minimum is not None and value < minimum:
            self.problem(key, f"must be >= {minimum}, got {_shown(value)}")
            return default
        if maximum is not None and value > maximum:
            self.problem(key, f"must be <= {maximum}, got {_shown(value)}")
            return default
        return float(value)

    def integer(self, key: str, default: int, minimum: int, maximum: int, quoted: bool = False) -> int:
        """A whole number within bounds (2.0 counts as 2); `quoted` also takes a string of digits."""
        value = self._present(key)
        if value is _MISSING:
            return default
        if quoted and isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong_type(key, "an integer", value)
            return default
        if not minimum <= value <= maximum:
            self.problem(key, f"must be between {minimum} and {maximum}, got {value}")
            return default
        return value

    def flag(self, key: str, default: bool) -> bool:
        """true or false."""
        value = self._present(key)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {_shown(value)}")
            return default
        return value

    def _wrong_type(self, key: str, expected: str, value: Any) -> None:
        if isinstance(value, bool):
            self.problem(key, f"expected {expected}, got a boolean")
        elif isinstance(value, str) and _quoted_number(value):
            self.problem(key, f"expected {expected}, got the string {value!r} (write numbers without quotes)")
        else:
            self.problem(key, f"expected {expected}, got {_shown(value)}")

    def finish(self) -> None:
        """Report every key no getter asked for: a problem, or a warning in a lenient (mapper-framework) section."""
        for key, message in unknown_keys(self.raw, self.known):
            if self.lenient and self.warnings is not None:
                hint = message.split(";", 1)[1].strip() + " " if ";" in message else ""
                self.warnings.append(f"{self.name}.{key}: not a key jetson-mapper uses; {hint}ignored")
            else:
                self.problems.append(f"{self.name}.{key}: {message}")
