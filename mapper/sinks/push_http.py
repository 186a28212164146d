"""pushMethod.http: one POST per property and reportCycle to `hostName:port` + `requestPath`, kept alive per receiver.

The body is mapper-framework's form (`<property>=<value>&time=<local YYYY-MM-DD HH:MM:SS>`, URL-encoded), or the
MQTT JSON payload with `datapanel.http.body: json`. urllib3 keeps one connection pool per receiver; a 2xx answer
is delivered, 408, 429, 5xx and connection errors are retried, any other status drops the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import urllib3

from mapper.devices.model import Device, DeviceProperty, HttpPush
from mapper.devices.registry import BoundProperty
from mapper.devices.values import Value
from mapper.sinks.mqtt.format import property_payload
from mapper.sinks.panel import PanelSink, Target, local_time, text_value
from mapper.sinks.queue import Permanent
from mapper.sinks.registry import SinkContext

DEFAULT_TIMEOUT_MS = 5000
RETRIED_STATUSES = frozenset({408, 429})
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass(frozen=True)
class Post:
    """One request: path on the receiver, body, content type and timeout in seconds."""

    path: str
    body: bytes
    content_type: str
    timeout: float


def receiver(push: HttpPush) -> tuple[str, str, int]:
    """(scheme, host, port) of a pushMethod.http; ValueError names the field that is wrong."""
    parts = urlsplit(push.hostname.strip())
    if not push.hostname.strip():
        raise ValueError("pushMethod.http.hostName is empty")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"pushMethod.http.hostName {push.hostname!r} must be http://host or https://host "
                         "(the scheme is part of hostName)")
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"pushMethod.http.hostName {push.hostname!r} must be only scheme://host "
                         "(path goes in requestPath; no user, query or fragment)")
    if parts.port is not None:
        raise ValueError(f"pushMethod.http.hostName {push.hostname!r} must not carry a port: use port")
    if not 0 < push.port < 65536:
        raise ValueError(f"pushMethod.http.port {push.port} is out of range (1 to 65535)")
    if push.requestpath and not push.requestpath.startswith("/"):
        raise ValueError(f"pushMethod.http.requestPath {push.requestpath!r} must start with /")
    if push.timeout_ms < 0:
        raise ValueError(f"pushMethod.http.timeout {push.timeout_ms} is negative (milliseconds)")
    return parts.scheme, parts.hostname, push.port


class HttpWriter:
    """POSTs through one keep-alive connection pool to one receiver."""

    def __init__(self, scheme: str, host: str, port: int) -> None:
        pool = urllib3.HTTPSConnectionPool if scheme == "https" else urllib3.HTTPConnectionPool
        self._pool = pool(host, port, maxsize=1, block=False, retries=False)

    def write(self, batch: Sequence[Post]) -> None:
        """Send each request in order; raise on the first that is not accepted."""
        for post in batch:
            response = self._pool.urlopen("POST", post.path or "/", body=post.body,
                                          headers={"Content-Type": post.content_type},
                                          timeout=urllib3.Timeout(total=post.timeout), retries=False,
                                          redirect=False)
            status = response.status
            if 200 <= status < 300:
                continue
            if status >= 500 or status in RETRIED_STATUSES:
                raise ConnectionError(f"receiver answered HTTP {status}")
            raise Permanent(f"receiver answered HTTP {status}")

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()


class HttpPushSink(PanelSink[Post]):
    """Every property with pushMethod.http (as its first push method)."""

    name = "http"
    method = "http"

    def __init__(self, context: SinkContext) -> None:
        settings = context.config.datapanel
        super().__init__(settings.queue("http"))
        self._json = settings.http_body == "json"

    def problems(self, device: Device, prop: DeviceProperty) -> list[str]:
        """A receiver that cannot be parsed, a port out of range, a relative path, a negative timeout."""
        assert prop.http is not None
        try:
            receiver(prop.http)
        except ValueError as exc:
            return [str(exc)]
        return []

    def target(self, device: Device, prop: DeviceProperty) -> Target:
        """One target per scheme, host and port."""
        assert prop.http is not None
        scheme, host, port = receiver(prop.http)
        shown = f"[{host}]" if ":" in host else host
        return Target((scheme, host, port), f"{scheme}://{shown}:{port}")

    def writer(self, target: Target) -> HttpWriter:
        """A pool for the receiver."""
        key = target.key
        assert isinstance(key, tuple)
        return HttpWriter(str(key[0]), str(key[1]), int(key[2]))

    def item(self, device: Device, bound: BoundProperty, prop: DeviceProperty, value: Value,
             timestamp: float) -> Post:
        """The form body (or JSON) of one value."""
        assert prop.http is not None
        timeout = (prop.http.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000.0
        if self._json:
            body = property_payload(device.namespace, device.name, bound.name, value, bound.binding.type, timestamp)
            return Post(prop.http.requestpath, body, JSON, timeout)
        form = urlencode([(bound.name, text_value(value)), ("time", local_time(timestamp))])
        return Post(prop.http.requestpath, form.encode("utf-8"), FORM, timeout)


def build(context: SinkContext) -> HttpPushSink:
    """The HTTP push sink of a mapper."""
    return HttpPushSink(context)
