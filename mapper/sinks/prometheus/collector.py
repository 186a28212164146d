"""The /metrics collector: board families per device, control targets, mapper health and every sink's counters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mapper.control.controller import TargetStatus
from mapper.dmi.calls import CallCounter
from mapper.pods.usage import PodSample
from mapper.sinks.base import RuntimeView
from mapper.sinks.prometheus.families import (
    DEVICE_LABELS,
    KeyRouter,
    Row,
    RowGauge,
    power_mode,
    reading_gauges,
    reading_rows,
)
from mapper.sinks.prometheus.pods import lookup_counter, pod_families
from mapper.sinks.registry import SinkSet


class ControlledView(RuntimeView, Protocol):
    """The runtime as the collector reads it: the view sinks get, plus the controller's targets."""

    def target_statuses(self) -> list[TargetStatus]:
        """Every desired value being worked towards."""
        ...

    @property
    def pods(self) -> PodSample | None:
        """Pod attribution of the latest sample (None when disabled)."""
        ...


class MapperCollector(Collector):
    """Collects from the runtime's last sample; cheap and side-effect free (a scrape never calls jtop)."""

    def __init__(self, runtime: ControlledView, node: str, sinks: SinkSet | None = None,
                 calls: CallCounter | None = None) -> None:
        self._runtime = runtime
        self._node = node
        self._sinks = sinks
        self._calls = calls
        self._router = KeyRouter()
        self._cached_rows: tuple[Mapping[str, Any] | None, dict[str, list[Row]]] = (None, {})

    def collect(self) -> Iterator[Metric]:
        """Yield every family for every running device, then control targets, mapper health and sinks."""
        runtime = self._runtime
        readings = runtime.readings if runtime.state() != "offline" else {}
        snapshot = runtime.snapshot
        devices = runtime.devices()
        merged: dict[str, Metric] = {}
        rows = self._rows_of(readings)
        for running in devices:
            base = (running.key[0], running.key[1], self._node)
            families = [*reading_gauges(readings, base, self._router, rows), power_mode(snapshot, readings, base)]
            for family in families:
                known = merged.get(family.name)
                if known is None:
                    merged[family.name] = family
                elif isinstance(known, RowGauge) and isinstance(family, RowGauge):
                    known.rows.extend(family.rows)
                else:
                    known.samples.extend(family.samples)
        yield from merged.values()
        pods = runtime.pods
        if pods is not None:
            if readings:
                yield from pod_families(pods, [(r.key[0], r.key[1], self._node) for r in devices])
            yield lookup_counter(pods, self._node)
        yield from self._control_metrics()
        yield from self._health(len(devices))
        if self._calls is not None:
            yield self._dmi_calls(self._calls)
        if self._sinks is not None:
            yield from self._sink_series(self._sinks)
            yield from self._own_series(self._sinks)

    def _rows_of(self, readings: Mapping[str, Any]) -> dict[str, list[Row]]:
        """Family rows of a readings object, built once per sample (the runtime replaces, never mutates, it)."""
        source, rows = self._cached_rows  # one tuple: concurrent scrapes never see rows of another sample
        if readings is not source:
            rows = reading_rows(readings, self._router)
            self._cached_rows = (readings, rows)
        return rows

    def _control_metrics(self) -> Iterator[Metric]:
        converged = GaugeMetricFamily("jetson_property_converged",
                                      "1 when the board shows the desired value of a writable property.",
                                      labels=(*DEVICE_LABELS, "property"))
        drift = CounterMetricFamily("jetson_property_drift", "Times the board left a reached desired value.",
                                    labels=(*DEVICE_LABELS, "property"))
        failures = CounterMetricFamily("jetson_setter_failures", "Desired values the mapper gave up on.",
                                       labels=(*DEVICE_LABELS, "property"))
        for status in self._runtime.target_statuses():
            labels = [status.device[0], status.device[1], self._node, status.prop]
            converged.add_metric(labels, 1.0 if status.state == "converged" else 0.0)
            drift.add_metric(labels, status.drift_count)
            failures.add_metric(labels, status.failures)
        yield from (converged, drift, failures)

    def _health(self, device_count: int) -> Iterator[Metric]:
        health = self._runtime.health
        node = [self._node]
        up = GaugeMetricFamily("jetson_mapper_source_up", "1 while the jtop service delivers samples.",
                               labels=["node"])
        up.add_metric(node, 1.0 if health.source_up else 0.0)
        last = GaugeMetricFamily("jetson_mapper_last_sample_timestamp_seconds",
                                 "Unix time of the last jtop sample.", labels=["node"])
        last.add_metric(node, health.last_sample_wall)
        devices = GaugeMetricFamily("jetson_mapper_devices", "Devices the mapper runs.", labels=["node"])
        devices.add_metric(node, device_count)
        reports = CounterMetricFamily("jetson_mapper_reports", "Twin reports EdgeCore accepted.",
                                      labels=["namespace", "device", "node"])
        for (namespace, name), count in sorted(health.reports_ok.items()):
            reports.add_metric([namespace, name, self._node], count)
        yield from (up, last, devices, reports)
        if self._sinks is not None:
            errors = CounterMetricFamily("jetson_mapper_sink_errors", "Deliveries that failed, by sink.",
                                         labels=["node", "sink"])
            for name, sink in self._sinks.counted():
                stats = (sink.stats() if sink is not None else None) or ()
                errors.add_metric([self._node, name], sum(s.failed + s.dropped for s in stats))
            yield errors

    def _dmi_calls(self, calls: CallCounter) -> Metric:
        family = CounterMetricFamily("jetson_mapper_dmi_requests", "DMI calls by method and gRPC code.",
                                     labels=["node", "method", "code"])
        for (method, code), count in calls.counts():
            family.add_metric([self._node, method, code], count)
        return family

    def _sink_series(self, sinks: SinkSet) -> Iterator[Metric]:
        """jetson_mapper_sink_* per sink and target, for every sink that counts its deliveries."""
        labels = ["node", "sink", "target"]
        sent = CounterMetricFamily("jetson_mapper_sink_sent", "Items a sink delivered to a target.", labels=labels)
        failed = CounterMetricFamily("jetson_mapper_sink_failed", "Delivery attempts to a target that failed.",
                                     labels=labels)
        dropped = CounterMetricFamily("jetson_mapper_sink_dropped",
                                      "Items a sink gave up on (queue full, refused by the target, shutdown).",
                                      labels=labels)
        queued = GaugeMetricFamily("jetson_mapper_sink_queued", "Items waiting for a target.", labels=labels)
        up = GaugeMetricFamily("jetson_mapper_sink_up", "1 while the last delivery attempt to a target succeeded.",
                               labels=labels)
        for name, sink in sinks.counted():
            for stats in (sink.stats() if sink is not None else None) or ():
                row = [self._node, name, stats.target]
                sent.add_metric(row, stats.sent)
                failed.add_metric(row, stats.failed)
                dropped.add_metric(row, stats.dropped)
                queued.add_metric(row, stats.queued)
                up.add_metric(row, 1.0 if stats.up else 0.0)
        yield from (sent, failed, dropped, queued, up)

    def _own_series(self, sinks: SinkSet) -> Iterator[Metric]:
        """The series a sink kept from before the common families (jetson_mapper_mqtt_* per broker)."""
        for series, sink in sinks.own_series():
            labels = ["node", series.target_label]
            sent = CounterMetricFamily(f"{series.prefix}_{series.sent[0]}", series.sent[1], labels=labels)
            dropped = CounterMetricFamily(f"{series.prefix}_{series.dropped[0]}", series.dropped[1], labels=labels)
            queued = GaugeMetricFamily(f"{series.prefix}_{series.queued[0]}", series.queued[1], labels=labels)
            up = GaugeMetricFamily(f"{series.prefix}_{series.up[0]}", series.up[1], labels=labels)
            for stats in (sink.stats() if sink is not None else None) or ():
                target = [self._node, stats.target]
                sent.add_metric(target, stats.sent)
                dropped.add_metric(target, stats.dropped)
                queued.add_metric(target, stats.queued)
                up.add_metric(target, 1.0 if stats.up else 0.0)
            yield from (sent, dropped, queued, up)
