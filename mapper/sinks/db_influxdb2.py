"""dbMethod.influxdb2: one point per property and reportCycle through influxdb-client, one client per URL.

Shape as mapper-framework: measurement and tags from influxdb2DataConfig, one field named `fieldKey`, written to
influxdb2ClientConfig's org and bucket with the token of env `TOKEN` (or `datapanel.influxdb2.token_file`).
Unlike it, the field keeps the property's type (INT an integer, FLOAT/DOUBLE a float, BOOLEAN a boolean, STRING
a string) and the point carries the sample's time (millisecond precision), not the time of the write.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from mapper.devices.model import Device, DeviceProperty, Influxdb2Method
from mapper.devices.registry import BoundProperty
from mapper.devices.values import Value
from mapper.sinks.panel import PanelSink, Target
from mapper.sinks.queue import Permanent
from mapper.sinks.registry import SinkContext

REFUSED_STATUSES = frozenset({400, 413, 422})  # bad line protocol, too large, field type conflict


@dataclass(frozen=True)
class Row:
    """One point for one org and bucket."""

    org: str
    bucket: str
    point: Point


def check_method(method: Influxdb2Method) -> list[str]:
    """What is missing or malformed in an influxdb2 dbMethod, naming the CRD field."""
    problems = []
    parts = urlsplit(method.url.strip())
    prefix = "pushMethod.dbMethod.influxdb2"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{prefix}.influxdb2ClientConfig.url {method.url!r} must be http://host:port or https://...")
    else:
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            problems.append(f"{prefix}.influxdb2ClientConfig.url {method.url!r} has a port out of range")
    for name, value in (("org", method.org), ("bucket", method.bucket)):
        if not value:
            problems.append(f"{prefix}.influxdb2ClientConfig.{name} is empty")
    for name, value in (("measurement", method.measurement), ("fieldKey", method.field_key)):
        if not value:
            problems.append(f"{prefix}.influxdb2DataConfig.{name} is empty")
    problems.extend(f"{prefix}.influxdb2DataConfig.tag {key!r} has an empty key or value"
                    for key, value in method.tags.items() if not key or not value)
    return problems


class InfluxWriter:
    """Writes batches of points with one client (keep-alive pool) to one InfluxDB URL."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self._client = InfluxDBClient(url=url, token=token or "", timeout=int(timeout * 1000), retries=False)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, batch: Sequence[Row]) -> None:
        """One write request per org and bucket of the batch."""
        grouped: dict[tuple[str, str], list[Point]] = defaultdict(list)
        for row in batch:
            grouped[(row.org, row.bucket)].append(row.point)
        for (org, bucket), points in grouped.items():
            try:
                self._api.write(bucket=bucket, org=org, record=points,
                                write_precision=WritePrecision.MS)  # type: ignore[arg-type]
            except ApiException as exc:
                if exc.status in REFUSED_STATUSES:
                    raise Permanent(f"InfluxDB answered HTTP {exc.status}: {exc.reason}") from None
                raise ConnectionError(f"InfluxDB answered HTTP {exc.status}: {exc.reason}") from None

    def close(self) -> None:
        """Close the client."""
        self._client.close()


class Influxdb2Sink(PanelSink[Row]):
    """Every property whose first database is influxdb2."""

    name = "influxdb2"
    method = "influxdb2"

    def __init__(self, context: SinkContext) -> None:
        settings = context.config.datapanel
        super().__init__(settings.queue("influxdb2"), secrets=(settings.influx_token,))
        self._token = settings.influx_token
        self._timeout = settings.timeout

    def problems(self, device: Device, prop: DeviceProperty) -> list[str]:
        """Missing url, org, bucket, measurement or fieldKey; a URL that is not http(s)."""
        assert prop.influxdb2 is not None
        return check_method(prop.influxdb2)

    def target(self, device: Device, prop: DeviceProperty) -> Target:
        """One client per URL."""
        assert prop.influxdb2 is not None
        url = prop.influxdb2.url.strip().rstrip("/")
        return Target(url, url)

    def writer(self, target: Target) -> InfluxWriter:
        """A client for the URL with the configured token."""
        return InfluxWriter(str(target.key), self._token, self._timeout)

    def item(self, device: Device, bound: BoundProperty, prop: DeviceProperty, value: Value,
             timestamp: float) -> Row | None:
        """The point of one value; None for a non-finite number (line protocol has no spelling for it)."""
        method = prop.influxdb2
        assert method is not None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        point = Point(method.measurement)
        for key, tag in method.tags.items():
            point = point.tag(key, tag)
        point = point.field(method.field_key, value).time(round(timestamp * 1000), WritePrecision.MS)
        return Row(method.org, method.bucket, point)


def build(context: SinkContext) -> Influxdb2Sink:
    """The InfluxDB v2 sink of a mapper."""
    return Influxdb2Sink(context)
