"""MQTT wire formats without a client: broker addresses, topics and JSON payloads."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from mapper.devices.redact import redact

PropertyValue = str | int | float | bool

_PLAIN_SCHEMES = frozenset({"tcp", "mqtt"})
_TLS_SCHEMES = frozenset({"ssl", "tls", "mqtts"})
PLAIN_PORT = 1883
TLS_PORT = 8883


def _split_host_port(rest: str, shown: str) -> tuple[str, int | None]:
    """Host and optional port of `host`, `host:port`, `[v6]` or `[v6]:port`; `shown` is the address for errors."""
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ValueError(f"MQTT address {shown!r}: malformed IPv6 literal")
        port_text = tail[1:] if tail else None
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:
        host, port_text = rest, None
    if not host:
        raise ValueError(f"MQTT address {shown!r} has no host")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"MQTT address {shown!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def normalise_address(address: str) -> tuple[str, int, bool]:
    """(host, port, tls) of a broker address such as tcp://h:1883, mqtt://h, ssl://h:8883, h:1883 or h.

    The scheme decides TLS (tcp/mqtt plain; ssl/tls/mqtts TLS); without a scheme, port 8883 means TLS.
    Raises ValueError with a readable message for anything else (credentials in it shown as ***).
    """
    if not isinstance(address, str) or not address.strip():
        raise ValueError("MQTT address is empty")
    shown = redact(address)
    text = address.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "", text
    scheme = scheme.lower()
    if scheme and scheme not in _PLAIN_SCHEMES | _TLS_SCHEMES:
        raise ValueError(f"MQTT address {shown!r}: scheme {scheme!r} is not one of tcp, mqtt, ssl, tls, mqtts")
    rest = rest.rstrip("/")
    if "/" in rest or "@" in rest or "?" in rest:
        raise ValueError(f"MQTT address {shown!r} must be scheme://host:port (credentials go in the mqtt config)")
    host, port = _split_host_port(rest, shown)
    tls = scheme in _TLS_SCHEMES if scheme else port == TLS_PORT
    return host, port if port is not None else (TLS_PORT if tls else PLAIN_PORT), tls


def canonical_address(host: str, port: int, tls: bool) -> str:
    """One spelling per broker endpoint, e.g. tcp://127.0.0.1:1883 or ssl://[::1]:8883."""
    shown = f"[{host}]" if ":" in host else host
    return f"{'ssl' if tls else 'tcp'}://{shown}:{port}"


def topic_problem(topic: str) -> str | None:
    """Why `topic` cannot be published to, or None when it can."""
    if not isinstance(topic, str) or not topic:
        return "topic is empty"
    if "+" in topic or "#" in topic:
        return f"topic {topic!r} contains a wildcard (+ or #)"
    if "\x00" in topic:
        return f"topic {topic!r} contains a NUL character"
    if len(topic.encode("utf-8")) > 65535:
        return "topic is longer than 65535 bytes"
    return None


def _json_value(value: PropertyValue) -> PropertyValue | None:
    """A JSON-safe value: NaN and infinities become null (JSON has no spelling for them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _milliseconds(timestamp: float) -> int:
    """Seconds since the epoch as whole milliseconds."""
    return round(timestamp * 1000)


def _encode(document: Mapping[str, object]) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def property_payload(
    namespace: str, device: str, prop: str, value: PropertyValue, type_: str, timestamp: float
) -> bytes:
    """JSON for one property reading; `timestamp` in seconds, sent as milliseconds since the epoch."""
    return _encode(
        {
            "device": device,
            "namespace": namespace,
            "property": prop,
            "value": _json_value(value),
            "type": type_,
            "timestamp": _milliseconds(timestamp),
        }
    )


def device_payload(
    namespace: str, device: str, values: Mapping[str, tuple[PropertyValue, str]], timestamp: float
) -> bytes:
    """JSON for all properties of one device in one cycle: {"properties": {name: {"value", "type"}}}."""
    return _encode(
        {
            "device": device,
            "namespace": namespace,
            "timestamp": _milliseconds(timestamp),
            "properties": {
                name: {"value": _json_value(value), "type": type_} for name, (value, type_) in values.items()
            },
        }
    )
