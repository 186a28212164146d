"""pushMethod.otel: OTLP/HTTP metrics to `endpointURL` through the OpenTelemetry SDK's data model and exporter.

As mapper-framework: one gauge per property named after it, instrumentation scope
`github.com/kubeedge/Template/data/dbmethod/otel`, resource attribute `device.id=<namespace>/<device>` merged
with the SDK defaults; we add `node`, `namespace`, `device` and `service.name=jetson-mapper`. Unlike it, each
reportCycle's value is one data point stamped with the sample's time and queued, so an outage loses nothing
the queue can hold; INT and BOOLEAN (0/1) points are integers, FLOAT and DOUBLE doubles; a STRING property has
no gauge and its values are counted as dropped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from mapper.devices.model import Device, DeviceProperty
from mapper.devices.registry import BoundProperty
from mapper.devices.values import Value
from mapper.sinks.panel import PanelSink, Target
from mapper.sinks.registry import SinkContext

SCOPE = InstrumentationScope("github.com/kubeedge/Template/data/dbmethod/otel")
DEFAULT_PATH = "/v1/metrics"
log = logging.getLogger(__name__)
# The exporter logs every failed attempt itself, with the endpoint; the delivery queue logs one line per outage.
logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
logging.getLogger("opentelemetry.exporter.otlp.common").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Point:
    """One gauge value of one device, with the sample's time."""

    resource: tuple[tuple[str, str], ...]
    name: str
    unit: str
    value: int | float
    time_unix_nano: int


def endpoint(url: str) -> str:
    """The export URL of an endpointURL (no path: /v1/metrics); ValueError names what is wrong."""
    parts = urlsplit(url.strip())
    if not url.strip():
        raise ValueError("pushMethod.otel.endpointURL is empty")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"pushMethod.otel.endpointURL {url!r} must be http://host:port/path or https://...")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError(f"pushMethod.otel.endpointURL {url!r} has a port out of range (1 to 65535)") from None
    if parts.username is not None:
        raise ValueError(f"pushMethod.otel.endpointURL {url!r} must not carry credentials")
    path = parts.path if parts.path not in ("", "/") else DEFAULT_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


class OtlpWriter:
    """One OTLP/HTTP exporter (a requests session kept alive) per endpoint."""

    def __init__(self, url: str, timeout: float) -> None:
        self._exporter = OTLPMetricExporter(endpoint=url, timeout=timeout)

    def write(self, batch: Sequence[Point]) -> None:
        """Export every point of the batch in one request, grouped by device and gauge."""
        by_resource: dict[tuple[tuple[str, str], ...], dict[tuple[str, str], list[NumberDataPoint]]] = \
            defaultdict(lambda: defaultdict(list))
        for point in batch:
            by_resource[point.resource][(point.name, point.unit)].append(
                NumberDataPoint(attributes={}, start_time_unix_nano=0, time_unix_nano=point.time_unix_nano,
                                value=point.value))
        data = MetricsData([
            ResourceMetrics(Resource.create(dict(resource)), [ScopeMetrics(SCOPE, [
                Metric(name, "", unit, Gauge(points)) for (name, unit), points in gauges.items()
            ], "")], "")
            for resource, gauges in by_resource.items()
        ])
        if self._exporter.export(data) is not MetricExportResult.SUCCESS:
            raise ConnectionError("the OTLP receiver did not accept the export")

    def close(self) -> None:
        """Close the exporter's session."""
        self._exporter.shutdown()


class OtelSink(PanelSink[Point]):
    """Every property with pushMethod.otel (as its first push method)."""

    name = "otel"
    method = "otel"

    def __init__(self, context: SinkContext) -> None:
        super().__init__(context.config.datapanel.queue("otel"))
        self._node = context.node
        self._timeout = context.config.datapanel.timeout
        self._resources: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}

    def problems(self, device: Device, prop: DeviceProperty) -> list[str]:
        """An endpoint URL that cannot be exported to."""
        assert prop.otel is not None
        try:
            endpoint(prop.otel.endpoint_url)
        except ValueError as exc:
            return [str(exc)]
        return []

    def target(self, device: Device, prop: DeviceProperty) -> Target:
        """One target per export URL."""
        assert prop.otel is not None
        url = endpoint(prop.otel.endpoint_url)
        return Target(url, url)

    def writer(self, target: Target) -> OtlpWriter:
        """An exporter for the endpoint."""
        return OtlpWriter(str(target.key), self._timeout)

    def item(self, device: Device, bound: BoundProperty, prop: DeviceProperty, value: Value,
             timestamp: float) -> Point | None:
        """A data point, or None for a STRING value (a gauge holds numbers only)."""
        if isinstance(value, str):
            return None
        number: int | float = int(value) if isinstance(value, bool | int) else float(value)
        return Point(self._resource(device), bound.name, bound.binding.unit, number, round(timestamp * 1e3) * 10**6)

    def _resource(self, device: Device) -> tuple[tuple[str, str], ...]:
        resource = self._resources.get(device.key)
        if resource is None:
            attributes: Mapping[str, str] = {
                "service.name": "jetson-mapper", "device.id": f"{device.namespace}/{device.name}",
                "node": self._node, "namespace": device.namespace, "device": device.name}
            resource = self._resources[device.key] = tuple(sorted(attributes.items()))
        return resource

    def forget(self, key: tuple[str, str]) -> None:
        """A changed device gets its resource built again."""
        self._resources.pop(key, None)


def build(context: SinkContext) -> OtelSink:
    """The OTLP sink of a mapper."""
    return OtelSink(context)
