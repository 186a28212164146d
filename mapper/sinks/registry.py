"""The outputs a Device can ask for, one registration line each, and the set of sinks a mapper runs.

A sink kind's module is imported when the first Device asks for it, so a client library loads only when it is
used. Its module provides `build(context: SinkContext) -> Sink`.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from mapper.config import MapperConfig
from mapper.devices.model import Device, DeviceProperty
from mapper.sinks.base import OwnSeries, Sink
from mapper.sinks.mqtt.series import MQTT_SERIES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SinkKind:
    """An output selected by Device properties: its sink name, its module, and which properties use it."""

    name: str
    module: str
    used_by: Callable[[DeviceProperty], bool]
    own_series: OwnSeries | None = None
    delivers: bool = True  # False for a kind that only refuses Devices (no counters to show)


KINDS: tuple[SinkKind, ...] = (
    SinkKind("mqtt", "mapper.sinks.mqtt.sink", lambda prop: prop.push_method == "mqtt", MQTT_SERIES),
    SinkKind("http", "mapper.sinks.push_http", lambda prop: prop.push_method == "http"),
    SinkKind("otel", "mapper.sinks.push_otel", lambda prop: prop.push_method == "otel"),
    SinkKind("influxdb2", "mapper.sinks.db_influxdb2", lambda prop: prop.db_method == "influxdb2"),
    SinkKind("redis", "mapper.sinks.db_redis", lambda prop: prop.db_method == "redis"),
    SinkKind("mysql", "mapper.sinks.db_mysql", lambda prop: prop.db_method == "mysql"),
    SinkKind("tdengine", "mapper.sinks.db_tdengine", lambda prop: prop.db_method == "tdengine", delivers=False),
)


@dataclass(frozen=True)
class SinkContext:
    """What a sink kind is built from."""

    config: MapperConfig
    node: str


class SinkSet:
    """The sinks of one mapper: those Devices asked for (built on first use), then the always-on ones."""

    def __init__(self, context: SinkContext, core: Sequence[Sink] = (), kinds: Sequence[SinkKind] = KINDS) -> None:
        self._context = context
        self._core = tuple(core)
        self._kinds = tuple(kinds)
        self._lock = threading.Lock()
        self._built: dict[str, Sink] = {}
        self._order: tuple[Sink, ...] = self._core

    def add(self, sink: Sink) -> None:
        """Add an always-on sink after construction (one that needs the set first, like the /metrics page)."""
        with self._lock:
            self._core = (*self._core, sink)
            self._order = (*self._order, sink)

    def check(self, device: Device) -> list[str]:
        """Build the sinks `device` uses and collect their problems with it."""
        problems: list[str] = []
        for kind in self._kinds:
            if not any(kind.used_by(prop) for prop in device.properties):
                continue
            try:
                sink = self._sink_of(kind)
            except Exception as exc:  # a missing or broken client library refuses the Device, not the mapper
                log.exception("sink %s cannot be built", kind.name)
                problems.append(f"output {kind.name} is unavailable in this mapper: {type(exc).__name__}: {exc}")
                continue
            problems.extend(sink.check(device))
        for sink in self._core:
            problems.extend(sink.check(device))
        return problems

    def _sink_of(self, kind: SinkKind) -> Sink:
        with self._lock:
            sink = self._built.get(kind.name)
            if sink is None:
                module = importlib.import_module(kind.module)
                sink = module.build(self._context)
                assert isinstance(sink, Sink), f"{kind.module}.build() returned {sink!r}"
                self._built[kind.name] = sink
                built = [self._built[k.name] for k in self._kinds if k.name in self._built]
                self._order = (*built, *self._core)
                log.debug("sink %s ready", kind.name)
            return sink

    def __iter__(self) -> Iterator[Sink]:
        """Every sink in delivery order: Device-selected ones in registration order, then the always-on ones."""
        return iter(self._order)

    def counted(self) -> list[tuple[str, Sink | None]]:
        """Every sink with delivery counters by name, None for kinds no Device uses yet; sorted by name."""
        with self._lock:
            rows: list[tuple[str, Sink | None]] = [(k.name, self._built.get(k.name)) for k in self._kinds
                                                   if k.delivers]
        rows.extend((s.name, s) for s in self._core if s.stats() is not None)
        return sorted(rows, key=lambda row: row[0])

    def own_series(self) -> list[tuple[OwnSeries, Sink | None]]:
        """The older per-kind metric names, in registration order, with the sink once built."""
        with self._lock:
            return [(k.own_series, self._built.get(k.name)) for k in self._kinds if k.own_series is not None]

    def close(self) -> None:
        """Close every sink, Device-selected ones first."""
        for sink in self._order:
            try:
                sink.close()
            except Exception:  # one sink failing to close must not keep the others open
                log.exception("closing sink %s failed", sink.name)
