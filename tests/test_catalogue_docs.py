"""docs/properties.md must describe exactly the catalogue and the reading keys the code produces."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mapper.devices.catalogue import CATALOGUE
from mapper.readings.normaliser import READING_KEYS, documented_key, normalise

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "properties.md"
FIXTURES = REPO / "tests" / "fixtures" / "jtop"
KIND_TYPES = {"float": float, "int": int, "str": str, "bool": bool}


def table_after(heading: str) -> list[list[str]]:
    """Rows (cells without backticks) of the first Markdown table below `heading`, header excluded."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            rows.append([cell.strip().strip("`") for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table under {heading!r}"
    return rows[2:]  # header and separator


def test_catalogue_table_matches_catalogue() -> None:
    documented = [tuple(row[:6]) for row in table_after("## Built-in properties (catalogue)")]
    expected = [
        (e.name, e.type, e.unit, "ReadWrite" if e.writable else "ReadOnly", e.reading,
         f"{e.minimum}..{e.maximum}" if e.minimum or e.maximum else "")
        for e in CATALOGUE
    ]
    assert documented == expected


def test_reading_key_table_matches_reading_keys() -> None:
    documented = [tuple(row[:3]) for row in table_after("## Flat reading keys")]
    assert documented == [(k.pattern, k.kind, k.unit) for k in READING_KEYS]


def test_catalogue_readings_are_documented_keys() -> None:
    for entry in CATALOGUE:
        assert documented_key(entry.reading) is not None, entry.name


def snapshots() -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every fixture file, and every object nested one level down (files holding several boards)."""
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        yield path.name, data
        for name, value in data.items():
            if isinstance(value, dict):
                yield f"{path.name}:{name}", value


SNAPSHOTS = list(snapshots())


def test_fixtures_are_present() -> None:
    assert len({name.split(":")[0] for name, _ in SNAPSHOTS}) >= 8


@pytest.mark.parametrize(("name", "snapshot"), SNAPSHOTS, ids=[n for n, _ in SNAPSHOTS])
def test_every_produced_key_is_documented_with_its_type(name: str, snapshot: Mapping[str, Any]) -> None:
    for key, value in normalise(snapshot).items():
        documented = documented_key(key)
        assert documented is not None, f"{name}: undocumented reading key {key!r}"
        expected_type = KIND_TYPES[documented.kind]
        assert type(value) is expected_type, f"{name}: {key}={value!r} is not {documented.kind}"


def test_documented_key_rejects_unknown_and_partial_keys() -> None:
    assert documented_key("temperature.soc0") is not None
    assert documented_key("power.rail.VDD_IN.power") is not None
    assert documented_key("temperature") is None
    assert documented_key("temperature.soc0.extra") is None
    assert documented_key("power.rail.VDD_IN") is None
    assert documented_key("gpu.load") is None
