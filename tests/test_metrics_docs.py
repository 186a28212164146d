"""docs/metrics.md describes exactly the families a live mapper exposes, on every emulated board and mode.

Scrapes `jetson-mapper demo` on the four emulator profiles (standalone, a Device pushing to MQTT, desired
values) and one mapper registered with a fake EdgeCore, then compares each family's type and label names
with the documentation table. The same scrapes are checked for what a scrape must never show.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from common import new_short_dir
from fake_edgecore import FakeEdgeCore
from mapper_process import DEVICE_MODEL, Emulator, Mapper, wait_until
from metrics_scrape import SENTINEL, FamilyShape, demo, families, promtool_check_metrics, sample_values, scrape
from pods_stack import pods_mapper

from mapper.dmi.manifests import load_manifests
from mapper.emulator.profile import builtin_profile_names
from mapper.readings.normaliser import READING_KEYS

pytestmark = [pytest.mark.slow, pytest.mark.jtop]

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
PROFILES = builtin_profile_names()
EDGECORE = "edgecore"
PODS = "pods"
APPEARS = {"always", "board", "desired", "edgecore", "mqtt", "pods", "sink"}
MAX_SERIES = 400  # the biggest emulated board (AGX Orin, 12 cores) exposes about 220


@dataclass(frozen=True)
class DocumentedFamily:
    """One row of the families table."""

    name: str
    type: str
    labels: frozenset[str]
    unit: str
    source: str
    appears: str


def documented_families() -> dict[str, DocumentedFamily]:
    """The families table of docs/metrics.md by metric name."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Families")
    rows: list[list[str]] = []
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("| "):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, body = rows[0], rows[2:]
    assert header == ["metric", "type", "labels", "unit", "source", "appears"], header
    table: dict[str, DocumentedFamily] = {}
    for name, kind, labels, unit, source, appears in body:
        family = DocumentedFamily(name.strip("`"), kind, frozenset(label.strip() for label in labels.split(",")),
                                  unit, source, appears)
        assert family.name not in table, f"{family.name} documented twice"
        table[family.name] = family
    return table


def edgecore_scrape() -> str:
    """/metrics of a mapper registered with a fake EdgeCore that hands it the bundled Device (1 s reports)."""
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / "jetson-xavier.yaml"])
    for prop in devices[0].spec.properties:
        prop.reportCycle = 1000
    workdir = new_short_dir()
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        emulator = Emulator(workdir, interval=0.5).start()
        stack.callback(emulator.stop)
        edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
        edgecore.set_devices([(models[0], devices[0])])
        edgecore.start()
        stack.callback(edgecore.stop)
        mapper = Mapper(workdir, {
            "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
            "common": {"edgecore_sock": os.path.join(workdir, "dmi.sock")},
            "source": {"jtop_socket": emulator.socket, "interval": 0.5},
        })
        stack.callback(mapper.stop)
        mapper.start()
        return str(wait_until(lambda: (lambda text: text if "\njetson_mapper_reports_total{" in text
                                       and "\njetson_mapper_dmi_requests_total{" in text else None)(
            scrape(mapper.base)), timeout=60))


def pods_scrape() -> str:
    """/metrics of a standalone mapper with pods enabled on a fake node (tests/pods_stack.py)."""
    workdir = new_short_dir()
    try:
        with pods_mapper(workdir) as (_, mapper):
            return str(wait_until(lambda: (lambda text: text if "\njetson_pod_gpu_memory_bytes{" in text else None)(
                scrape(mapper.base)), timeout=60))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def profile_scrape(profile: str) -> str:
    """/metrics of the demo on one emulator profile, after a few samples."""
    with demo(profile) as base:
        first = scrape(base)
        wait_until(lambda: scrape(base).count("jetson_uptime_seconds{") and scrape(base) != first, timeout=30)
        return scrape(base)


@pytest.fixture(scope="module")
def scrapes() -> Iterator[dict[str, str]]:
    """Live expositions: one per emulator profile (demo), one in EdgeCore mode, one with pods, taken in parallel."""
    jobs = {profile: (profile_scrape, profile) for profile in PROFILES}
    with ThreadPoolExecutor(max_workers=len(jobs) + 2) as pool:
        futures = {name: pool.submit(function, argument) for name, (function, argument) in jobs.items()}
        edgecore = pool.submit(edgecore_scrape)
        pods = pool.submit(pods_scrape)
        texts = {name: future.result() for name, future in futures.items()}
        texts[EDGECORE] = edgecore.result()
        texts[PODS] = pods.result()
    yield texts


def shapes_of(scrapes: dict[str, str]) -> dict[str, dict[str, FamilyShape]]:
    """Family shapes of every scrape."""
    return {name: families(text) for name, text in scrapes.items()}


def test_table_is_well_formed() -> None:
    table = documented_families()
    assert len(table) >= 40
    patterns = {key.pattern for key in READING_KEYS}
    for family in table.values():
        assert family.type in {"gauge", "counter"}, family
        assert family.appears in APPEARS, family
        assert family.unit, family
        assert (family.type == "counter") == family.name.endswith("_total"), family
        device_series = family.name.startswith("jetson_") and not family.name.startswith("jetson_mapper_")
        if device_series:
            assert {"namespace", "device", "node"} <= family.labels, family
        else:
            assert "node" in family.labels, family
        for key in re.findall(r"`([^`]+)`", family.source):
            if "." in key or key in {"uptime", "jetson_clocks"}:
                assert key in patterns, f"{family.name}: source {key!r} is not a documented reading key"


def test_every_exposed_family_is_documented_with_its_type_and_labels(scrapes: dict[str, str]) -> None:
    table = documented_families()
    for scrape_name, shapes in shapes_of(scrapes).items():
        for name, shape in shapes.items():
            assert name in table, f"{name} ({scrape_name}) is not in docs/metrics.md"
            assert shape.type == table[name].type, (scrape_name, name, shape.type)
            if shape.samples:
                assert shape.labels == table[name].labels, (scrape_name, name, sorted(shape.labels))


def test_every_documented_family_shows_up_where_the_doc_says(scrapes: dict[str, str]) -> None:
    shapes = shapes_of(scrapes)
    with_samples = {name: {f for f, s in by_name.items() if s.samples} for name, by_name in shapes.items()}
    for family in documented_families().values():
        where = sorted(name for name, present in with_samples.items() if family.name in present)
        if family.appears == "always":
            assert where == sorted(scrapes), f"{family.name} is documented as always, exposed only in {where}"
        elif family.appears == "sink":
            assert EDGECORE in where, f"{family.name} missing in EdgeCore mode (the dmi sink)"
            assert set(where) & set(PROFILES), f"{family.name} missing for the demo's MQTT pushes"
        elif family.appears == "edgecore":
            assert EDGECORE in where, f"{family.name} missing in EdgeCore mode"
            assert not set(where) & set(PROFILES), f"{family.name} exposed in standalone mode: {where}"
        elif family.appears == "pods":
            assert PODS in where, f"{family.name} missing with pods enabled"
            assert not set(where) & set(PROFILES), f"{family.name} exposed with pods off (the default): {where}"
        else:  # board, desired, mqtt: the demo device pushes to MQTT and has desired values
            assert set(where) & set(PROFILES), f"{family.name} never exposed by any emulated board"


@pytest.mark.parametrize("name", [*PROFILES, EDGECORE, PODS])
def test_live_exposition_passes_promtool_and_stays_bounded(scrapes: dict[str, str], name: str) -> None:
    text = scrapes[name]
    promtool_check_metrics(text)
    samples = sample_values(text)
    assert 30 < len(samples) <= MAX_SERIES
    for metric, labels, value in samples:
        assert value != SENTINEL, f"jtop's offline sentinel exposed: {metric}{labels}"
        assert not {"pid", "process", "name", "user"} & set(labels), f"unbounded label on {metric}: {labels}"
    series = [(metric, tuple(sorted(labels.items()))) for metric, labels, _ in samples]
    assert len(series) == len(set(series)), "duplicate series"
