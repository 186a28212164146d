"""The cached /metrics encoder writes exactly the bytes prometheus_client writes, in both formats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import exposition as openmetrics
from test_exposition_golden import render_app

from mapper.sinks.prometheus.encoder import CachedEncoder, encoder_for

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jtop"
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


class Families:
    """A collector yielding fixed families."""

    def __init__(self, *families: Metric) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        """The families."""
        return iter(self.families)


def registry_of(*families: Metric) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(Families(*families))  # type: ignore[arg-type]
    return registry


def both(registry: CollectorRegistry) -> None:
    """Both formats equal the library's, twice (the second render comes from remembered labels)."""
    text, om = CachedEncoder(openmetrics_format=False), CachedEncoder(openmetrics_format=True)
    for _ in range(2):
        assert text(registry) == generate_latest(registry)
        assert om(registry) == openmetrics.generate_latest(registry)


@pytest.mark.parametrize("snapshot", sorted(p.name for p in FIXTURES.glob("*_built.json")))
def test_the_mappers_pages_are_byte_identical(snapshot: str) -> None:
    with render_app(json.loads((FIXTURES / snapshot).read_text(encoding="utf-8"))) as app:
        both(app.metrics_registry)


def test_odd_label_values_help_texts_and_values() -> None:
    gauge = GaugeMetricFamily("odd_gauge", 'help with \\ backslash, "quotes"\nand a newline', labels=["a", "b"])
    gauge.add_metric(['quote " here', "back\\slash"], 1e21)
    gauge.add_metric(["new\nline", "ünïcödé ✓"], float("nan"))
    gauge.add_metric(["", "inf"], float("inf"))
    gauge.add_metric(["neg", "tiny"], -1.5e-7)
    gauge.add_metric(["zero", "plus"], 0.0)
    gauge.add_metric(["zero", "minus"], -0.0)  # equal to 0.0 as a key, written apart
    gauge.add_metric(["one", "int"], 1)
    gauge.add_metric(["one", "bool"], True)
    counter = CounterMetricFamily("odd", "a counter", labels=["x"])
    counter.add_metric(["1"], 3)
    plain = GaugeMetricFamily("no_labels", "no labels", value=12345678.0)
    both(registry_of(gauge, counter, plain, GaugeMetricFamily("empty_family", "no samples", labels=["l"])))


def test_families_it_does_not_render_go_to_the_library() -> None:
    histogram = HistogramMetricFamily("h", "a histogram", buckets=[("1.0", 1), ("+Inf", 2)], sum_value=3)
    stamped = GaugeMetricFamily("stamped", "with a timestamp", labels=["a"])
    stamped.add_metric(["x"], 1.0, timestamp=1700000000.5)
    for family in (histogram, stamped):
        both(registry_of(GaugeMetricFamily("g", "g", value=1.0), family))


@pytest.mark.parametrize("accept", ["", "text/plain", PROMETHEUS_ACCEPT,
                                    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8"])
def test_negotiated_formats_get_the_cached_encoder(accept: str) -> None:
    _, content_type = choose_encoder(accept)
    assert encoder_for(content_type) is not None


def test_other_escapings_are_left_to_the_library() -> None:
    _, content_type = choose_encoder("application/openmetrics-text; version=1.0.0; escaping=dots")
    if "escaping=dots" in content_type:  # prometheus-client 0.22 and newer negotiate escaping
        assert encoder_for(content_type) is None
