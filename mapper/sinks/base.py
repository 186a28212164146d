"""The seam between the runtime and every output: what a sink is handed, and what it reports back.

The runtime knows outputs only through `Sink`. Each new sample goes to `on_sample`; for every device, each
`Route` a sink asks for is handed to `deliver` when its cycle is due, with the values of the latest sample;
`tick` runs on every pacing step and tells when the sink wants the next one (EdgeCore's DMI budget). Every method
has a do-nothing default, so a sink overrides only what it needs. None of them may block on the network or
raise: a sink owns its connection, its queue, its counters and its health.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from mapper.devices.model import Device, TwinValue
from mapper.devices.registry import BoundProperty, RunningDevice
from mapper.devices.values import Value

DeviceKey = tuple[str, str]


@dataclass(frozen=True)
class Route:
    """What a sink delivers for one device and how often (seconds): one property, or several in one message."""

    key: str
    cycle: float
    properties: tuple[BoundProperty, ...]


@dataclass(frozen=True)
class Delivery:
    """A due route with its typed values from the latest sample (properties the board lacks are left out)."""

    device: RunningDevice
    route: Route
    values: tuple[tuple[BoundProperty, Value], ...]
    timestamp: float  # wall time of the sample, seconds since the epoch


@dataclass(frozen=True)
class SinkStats:
    """Counters of one sink towards one target (a broker, a URL, a database, EdgeCore's socket)."""

    target: str
    sent: int
    failed: int
    dropped: int
    queued: int
    up: bool


@dataclass(frozen=True)
class OwnSeries:
    """Metric names a sink had before the common jetson_mapper_sink_* families; dashboards and alerts use them."""

    prefix: str
    target_label: str
    sent: tuple[str, str]  # (suffix, help) of the counter of delivered messages
    dropped: tuple[str, str]
    queued: tuple[str, str]
    up: tuple[str, str]


@dataclass
class Health:
    """Facts about the mapper itself, read by /metrics and /readyz."""

    source_up: bool = False
    source_reason: str = "not started"
    last_sample_wall: float = 0.0
    last_sample_mono: float = 0.0
    reports_ok: Counter[DeviceKey] = field(default_factory=Counter)


class RuntimeView(Protocol):
    """What sinks may read of the runtime: devices, the latest sample and the mapper's health."""

    health: Health

    @property
    def readings(self) -> Mapping[str, Any]:
        """The latest readings (empty before the first sample)."""

    @property
    def snapshot(self) -> Mapping[str, Any] | None:
        """The latest raw jtop sample."""

    def devices(self) -> Sequence[RunningDevice]:
        """Every running device, in a stable order."""

    def state(self) -> str:
        """The device state word EdgeCore accepts: online, offline or unhealthy."""

    def twins(self, running: RunningDevice, all_properties: bool = False) -> list[TwinValue]:
        """Twins of a device from the latest readings."""


class Sink:
    """One output of the mapper; subclasses set `name` and override what they need."""

    name: ClassVar[str] = "sink"

    def check(self, device: Device) -> list[str]:
        """Problems with what `device` asks of this sink (e.g. a malformed pushMethod); [] when it can run."""
        return []

    def routes(self, running: RunningDevice) -> Sequence[Route]:
        """What to deliver for a device, asked again only when the device changes."""
        return ()

    def deliver(self, delivery: Delivery) -> None:
        """Send (or queue) one due route; never blocks on the network, never raises."""

    def on_sample(self, view: RuntimeView) -> None:
        """A new sample was taken (runs in the sampling thread)."""

    def tick(self, now: float, view: RuntimeView) -> float | None:
        """A pacing step for sinks with a schedule of their own; return when the next one is wanted (monotonic
        seconds), None when the sink needs no steps."""
        return None

    def forget(self, key: DeviceKey) -> None:
        """A device was replaced or removed: drop what the sink keeps about it."""

    def stats(self) -> Sequence[SinkStats] | None:
        """Counters per target, or None for a sink that delivers nothing to count."""
        return None

    def close(self) -> None:
        """Flush what can be flushed quickly and release connections."""
