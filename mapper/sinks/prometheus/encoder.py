"""The text and OpenMetrics encodings of the /metrics page, with the formatted text of every label set remembered.

prometheus_client formats and escapes every label of every sample on every render; between two samples of a board
only the values change. This encoder writes the same bytes as prometheus_client's `generate_latest` (text 0.0.4)
and `openmetrics.exposition.generate_latest` (OpenMetrics 1.0.0) for the gauge and counter families the mapper
exposes (tests/test_exposition_golden.py compares the two on live pages), formatting values with the library's own
`floatToGoString`. Anything else (another family type, timestamps, exemplars, units) is rendered by the library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, cast

from prometheus_client import CollectorRegistry, generate_latest, utils
from prometheus_client.core import Metric
from prometheus_client.openmetrics import exposition as openmetrics

from mapper.sinks.prometheus.families import RowGauge

TEXT = ("text/plain", "0.0.4")
OPENMETRICS = ("application/openmetrics-text", "1.0.0")
SAME_FOR_LEGACY_NAMES = ("", "underscores", "allow-utf-8")  # escapings that leave valid names as they are
MAX_REMEMBERED = 20_000  # label sets; a board has a few hundred series, more means churn: start afresh
_SIMPLE_TYPES = frozenset({"gauge", "counter"})

LabelKey = tuple[str, tuple[Any, ...]]  # (sample name, label items) or (family name, label values)
float_text = cast(Callable[[float], str], utils.floatToGoString)  # the library's value formatting
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _label_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class _Unsupported(Exception):
    """A family this encoder does not render itself."""


class CachedEncoder:
    """Renders a registry as prometheus_client would, for one of the two formats, reusing formatted labels."""

    def __init__(self, openmetrics_format: bool) -> None:
        self._openmetrics = openmetrics_format
        self._headers: dict[tuple[str, str, str], str] = {}
        self._prefixes: dict[LabelKey, str] = {}
        self._values: dict[float, str] = {}  # many values repeat from one sample to the next

    def __call__(self, registry: CollectorRegistry) -> bytes:
        """The encoded page of everything the registry collects."""
        families = list(registry.collect())
        try:
            return self._render(families)
        except _Unsupported:
            library: Callable[[CollectorRegistry], bytes] = (
                openmetrics.generate_latest if self._openmetrics else generate_latest)
            return library(_Fixed(families))  # type: ignore[arg-type]

    def _render(self, families: Iterable[Metric]) -> bytes:
        if len(self._prefixes) > MAX_REMEMBERED:
            self._prefixes.clear()
        if len(self._values) > MAX_REMEMBERED:
            self._values.clear()
        prefixes = self._prefixes
        output: list[str] = []
        append = output.append
        for family in families:
            if family.type not in _SIMPLE_TYPES or family.unit:
                raise _Unsupported(family.name)
            append(self._header(family))
            if isinstance(family, RowGauge):
                self._rows(family, append)
                continue
            for sample in family.samples:
                if sample.timestamp is not None or sample.exemplar is not None:
                    raise _Unsupported(family.name)
                key = (sample.name, tuple(sample.labels.items()))
                prefix = prefixes.get(key)
                if prefix is None:
                    prefix = prefixes[key] = self._prefix(sample.name, sample.labels)
                append(prefix + self._text(sample.value) + "\n")
        if self._openmetrics:
            append("# EOF\n")
        return "".join(output).encode("utf-8")

    def _rows(self, family: RowGauge, append: Callable[[str], None]) -> None:
        """A row family's lines: no sample objects, the prefix of each label tuple remembered."""
        prefixes, name = self._prefixes, family.name
        for labels, value in family.rows:
            key = (name, labels)
            prefix = prefixes.get(key)
            if prefix is None:
                prefix = prefixes[key] = self._prefix(name, dict(zip(family.label_names, labels, strict=True)))
            append(prefix + self._text(value) + "\n")

    def _text(self, value: float) -> str:
        """A value's text, remembered: most values repeat from one sample to the next. Zeros are not (0.0 == -0.0
        but they are written apart), nor NaN (never equal to itself, so each one would be a new entry)."""
        if not value or value != value:
            return float_text(value)
        text = self._values.get(value)
        if text is None:
            text = self._values[value] = float_text(value)
        return text

    def _header(self, family: Metric) -> str:
        key = (family.name, family.type, family.documentation)
        header = self._headers.get(key)
        if header is None:
            if not _METRIC_NAME.fullmatch(family.name):
                raise _Unsupported(family.name)
            if self._openmetrics:
                name, help_text = family.name, _label_value(family.documentation)
            else:
                name = family.name + "_total" if family.type == "counter" else family.name
                help_text = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
            header = self._headers[key] = f"# HELP {name} {help_text}\n# TYPE {name} {family.type}\n"
        return header

    @staticmethod
    def _prefix(name: str, labels: dict[str, str]) -> str:
        if not _METRIC_NAME.fullmatch(name) or not all(_LABEL_NAME.fullmatch(k) for k in labels):
            raise _Unsupported(name)
        if not labels:
            return name + " "
        pairs = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted(labels.items()))
        return f"{name}{{{pairs}}} "


class _Fixed:
    """A registry-like object that yields families already collected."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        """The families, as collected once."""
        return iter(self._families)


def encoder_for(content_type: str) -> CachedEncoder | None:
    """A cached encoder for a content type prometheus_client negotiated, or None where the library's own is used."""
    media, *parameters = (part.strip() for part in content_type.split(";"))
    values = dict(p.partition("=")[::2] for p in parameters)
    if values.get("escaping", "") not in SAME_FOR_LEGACY_NAMES:
        return None
    if (media, values.get("version")) == TEXT:
        return CachedEncoder(openmetrics_format=False)
    if (media, values.get("version")) == OPENMETRICS:
        return CachedEncoder(openmetrics_format=True)
    return None
