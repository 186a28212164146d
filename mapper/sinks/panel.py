"""What every data-panel sink shares: one route per property using it, one DeliveryQueue per target.

A sink module subclasses `PanelSink` and says which properties it serves (`method`), what is wrong with a
method (`problems`), where a property's values go (`target`), how to build the writer of a target and the item
a value becomes. Everything else (routes, queues, counters, closing) is here, once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Generic, TypeVar

from mapper.devices.model import Device, DeviceProperty
from mapper.devices.registry import BoundProperty, RunningDevice
from mapper.devices.values import Value
from mapper.sinks.base import Delivery, Route, Sink, SinkStats
from mapper.sinks.queue import DeliveryQueue, QueueSettings, Writer

log = logging.getLogger(__name__)

ROUTE_PREFIX = "property:"
CLOSE_TIMEOUT = 2.0  # seconds all queues of a sink get together to flush at shutdown

Item = TypeVar("Item")


def text_value(value: Value) -> str:
    """A value as text without loss, as Go's FormatFloat(v, 'f', -1, 64): every digit, no exponent, 1.0 is "1"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        text = format(Decimal(repr(value)), "f")
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def host_port(addr: str, default_port: int | None = None) -> tuple[str, int]:
    """(host, port) of a Go-style `host:port` or `[v6]:port` address; ValueError says what is wrong."""
    text = addr.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        port_text = rest[1:] if bracket and rest.startswith(":") else ("" if bracket and not rest else None)
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host, port_text = text, ""
        elif ":" in host:
            port_text = None
    if not host or port_text is None or any(c in host for c in "/@?# "):
        raise ValueError(f"{addr!r} is not host:port")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{addr!r} has no port (host:port)")
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{addr!r}: port {port_text!r} is out of range (1 to 65535)")
    return host, int(port_text)


def local_time(timestamp: float) -> str:
    """mapper-framework's time format: local `YYYY-MM-DD HH:MM:SS`."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


@dataclass(frozen=True)
class Target:
    """Where a property's values go: a key for the queue and connection, and the address shown in metrics."""

    key: Hashable
    label: str


class PanelSink(Sink, Generic[Item]):
    """A sink with one queue and sender thread per target (a receiver, a database)."""

    method: ClassVar[str]  # "http", "otel", or a DB_METHODS name

    def __init__(self, queue: QueueSettings, secrets: Sequence[str | None] = ()) -> None:
        self._queue_settings = queue
        self._secrets = tuple(secret for secret in secrets if secret)
        self._lock = threading.Lock()
        self._queues: dict[Hashable, DeliveryQueue[Item]] = {}

    # what a subclass says
    def uses(self, prop: DeviceProperty) -> bool:
        """Whether this sink runs for `prop` (the first push method, or the first database, it names)."""
        return self.method in (prop.push_method, prop.db_method)

    def problems(self, device: Device, prop: DeviceProperty) -> list[str]:
        """What is wrong with the method of one property that uses this sink."""
        return []

    def target(self, device: Device, prop: DeviceProperty) -> Target:
        """Where the values of `prop` go."""
        raise NotImplementedError

    def writer(self, target: Target) -> Writer[Item]:
        """A writer for a new target (no I/O here: it connects when it first writes)."""
        raise NotImplementedError

    def item(self, device: Device, bound: BoundProperty, prop: DeviceProperty, value: Value,
             timestamp: float) -> Item | None:
        """What one value becomes on the queue; None when the target cannot hold it (counted as dropped)."""
        raise NotImplementedError

    # the Sink protocol
    def check(self, device: Device) -> list[str]:
        """Problems of every property of `device` that uses this sink, each naming the property and field."""
        found: list[str] = []
        for prop in device.properties:
            if self.uses(prop):
                found.extend(f"property {prop.name!r}: {problem}" for problem in self.problems(device, prop))
        return found

    def routes(self, running: RunningDevice) -> Sequence[Route]:
        """One route per property that uses this sink, every reportCycle."""
        device = running.device
        return [Route(ROUTE_PREFIX + bound.name, bound.report_cycle, (bound,)) for bound in running.properties
                if (prop := device.property(bound.name)) is not None and self.uses(prop)]

    def deliver(self, delivery: Delivery) -> None:
        """Queue each value for its target; never blocks, never raises."""
        device = delivery.device.device
        for bound, value in delivery.values:
            prop = device.property(bound.name)
            if prop is None or not self.uses(prop):
                continue
            try:
                queue = self._queue_of(self.target(device, prop))
            except Exception:  # a target check() let through must not break the runtime's loop
                log.exception("%s: no target for %s/%s %s", self.name, *device.key, bound.name)
                continue
            try:
                item = self.item(device, bound, prop, value, delivery.timestamp)
            except Exception:
                log.exception("%s: cannot encode %s/%s %s", self.name, *device.key, bound.name)
                item = None
            if item is None:
                queue.drop()
            else:
                queue.put(item)

    def _queue_of(self, target: Target) -> DeliveryQueue[Item]:
        with self._lock:
            queue = self._queues.get(target.key)
            if queue is None:
                queue = DeliveryQueue(self.name, target.label, self.writer(target), self._queue_settings,
                                      secrets=self._secrets)
                self._queues[target.key] = queue
            return queue

    def stats(self) -> Sequence[SinkStats]:
        """Counters per target address, sorted (targets shown alike, e.g. after redaction, are summed)."""
        with self._lock:
            queues = list(self._queues.values())
        merged: dict[str, SinkStats] = {}
        for stats in (queue.stats() for queue in queues):
            seen = merged.get(stats.target)
            merged[stats.target] = stats if seen is None else SinkStats(
                stats.target, seen.sent + stats.sent, seen.failed + stats.failed, seen.dropped + stats.dropped,
                seen.queued + stats.queued, seen.up and stats.up)
        return [merged[target] for target in sorted(merged)]

    def close(self) -> None:
        """Let every target flush for up to CLOSE_TIMEOUT s together, then stop its sender."""
        deadline = time.monotonic() + CLOSE_TIMEOUT
        with self._lock:
            queues = list(self._queues.values())
        for queue in queues:
            queue.close(deadline)
