"""The running mapper: one sample feeds every sink; each sink's routes are handed over when their cycle is due."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from mapper.control.controller import Controller, TargetStatus
from mapper.devices.model import Device, DeviceModel, TwinValue
from mapper.devices.registry import BoundProperty, DeviceRegistry, RunningDevice
from mapper.devices.values import Value, coerce_reading, format_twin
from mapper.pods.usage import PodSample
from mapper.readings.normaliser import Readings, normalise
from mapper.sinks.base import Delivery, DeviceKey, Health, Route, Sink

log = logging.getLogger(__name__)

ONLINE, OFFLINE, UNHEALTHY = "online", "offline", "unhealthy"
MAX_SLEEP = 5.0  # seconds the pacing loop sleeps at most when nothing is due (time-based states are seen by then)
MIN_SLEEP = 0.01
# Derives pod attribution from a sample and its readings (mapper/pods/); its readings join the sample's.
Attributor = Callable[[Mapping[str, Any], Readings], PodSample]


class Runtime:
    """Implements the DMI DeviceService and paces every sink from the latest readings."""

    def __init__(self, registry: DeviceRegistry, controller: Controller, source_interval: float,
                 sinks: Iterable[Sink] = (), clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, attributor: Attributor | None = None) -> None:
        self.registry = registry
        self.controller = controller
        self.health = Health()
        self._interval = source_interval
        self._sinks = sinks
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        # Held while routes are handed out and while devices change, so that a change never lands between two
        # routes of one step (it would put a device's routes out of step with each other for good).
        self._pace = threading.RLock()
        self._readings: Readings = {}
        self._snapshot: Mapping[str, Any] | None = None
        self._attributor = attributor
        self._pods: PodSample | None = None
        self._attributor_failed = False
        self._due: dict[tuple[DeviceKey, str, str], float] = {}
        self._routes: dict[tuple[DeviceKey, str], tuple[RunningDevice, Sequence[Route]]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # DeviceService (called by the DMI server, EdgeCore registration and standalone loading)
    def upsert_model(self, model: DeviceModel) -> None:
        """Create or update a DeviceModel."""
        self.registry.upsert_model(model)

    def remove_model(self, namespace: str, name: str) -> None:
        """Remove a DeviceModel."""
        self.registry.remove_model(namespace, name)

    def upsert_device(self, device: Device, strict_desired: bool = True) -> None:
        """Start or replace a device; raises DeviceRejected and keeps the old device on a bad spec."""
        with self._pace:
            running = self.registry.upsert_device(device, strict_desired)
            self.controller.set_targets(running)
            self._forget(device.key)
        log.info("device %s/%s running with %d properties", *device.key, len(running.properties))
        self._wake.set()

    def remove_device(self, namespace: str, name: str) -> None:
        """Stop a device."""
        with self._pace:
            removed = self.registry.remove_device(namespace, name) is not None
            self.controller.forget_device((namespace, name))
            self._forget((namespace, name))
        if removed:
            log.info("device %s/%s removed", namespace, name)
        self._wake.set()

    def get_device(self, namespace: str, name: str) -> tuple[Device, Sequence[TwinValue]] | None:
        """A device with its current twins."""
        running = self.registry.device(namespace, name)
        if running is None:
            return None
        return running.device, self.twins(running, all_properties=True)

    def replace_all(self, models: Sequence[DeviceModel], devices: Sequence[Device]) -> None:
        """Adopt the full device list EdgeCore handed over at (re-)registration."""
        with self._pace:
            before = {running.key for running in self.registry.devices()}
            problems = self.registry.replace_all(models, devices)
            for running in self.registry.devices():
                self.controller.set_targets(running)
            for key in before | {d.key for d in devices}:
                self._forget(key)
        for problem in problems:
            log.error("rejected at registration: %s", problem)
        self._wake.set()

    def _forget(self, key: DeviceKey) -> None:
        """A device changed or went: everything of it is due again and every sink starts afresh with it."""
        with self._lock:
            for due_key in [k for k in self._due if k[0] == key]:
                del self._due[due_key]
            for route_key in [k for k in self._routes if k[0] == key]:
                del self._routes[route_key]
        for sink in self._sinks:
            sink.forget(key)

    # source callbacks
    def on_sample(self, snapshot: Mapping[str, Any]) -> None:
        """A new jtop sample: normalise once, let the controller confirm its targets, tell every sink."""
        readings = normalise(snapshot)
        pods = self._attribute(snapshot, readings)
        if pods is not None:
            readings = MappingProxyType({**readings, **pods.readings})
        with self._lock:
            first = not self.health.last_sample_mono
            self._readings = readings
            self._pods = pods
            self._snapshot = snapshot
            self.health.last_sample_wall = float(snapshot.get("time") or self._wall())
            self.health.last_sample_mono = self._clock()
        if first:  # routes wait for the first sample
            self._wake.set()
        self.controller.on_sample(snapshot, readings)
        for sink in self._sinks:
            try:
                sink.on_sample(self)
            except Exception:  # one sink must never stop the others from seeing the sample
                log.exception("sink %s failed on a new sample", sink.name)

    def _attribute(self, snapshot: Mapping[str, Any], readings: Readings) -> PodSample | None:
        """The sample's pod attribution, when enabled; a failure costs this sample's pod figures only."""
        if self._attributor is None:
            return None
        try:
            return self._attributor(snapshot, readings)
        except Exception:  # attribution must never cost the sample itself
            (log.debug if self._attributor_failed else log.exception)("pod attribution failed")
            self._attributor_failed = True
            return None

    def on_availability(self, available: bool, reason: str) -> None:
        """The jtop service came or went (the source logs it)."""
        self.health.source_up = available
        self.health.source_reason = reason
        self._wake.set()  # device states changed

    @property
    def readings(self) -> Readings:
        """The latest readings (empty before the first sample)."""
        with self._lock:
            return self._readings

    @property
    def pods(self) -> PodSample | None:
        """Pod attribution of the latest sample (None when disabled or before the first sample)."""
        with self._lock:
            return self._pods

    @property
    def snapshot(self) -> Mapping[str, Any] | None:
        """The latest raw snapshot."""
        with self._lock:
            return self._snapshot

    def devices(self) -> Sequence[RunningDevice]:
        """Every running device, in a stable order."""
        return self.registry.devices()

    def target_statuses(self) -> list[TargetStatus]:
        """Every desired value being worked towards."""
        return self.controller.statuses()

    def state(self) -> str:
        """The device state word EdgeCore accepts: online, offline or unhealthy."""
        if not self.health.source_up:
            return OFFLINE
        stale_after = 3 * self._interval + 2.0
        if not self.health.last_sample_mono or self._clock() - self.health.last_sample_mono > stale_after:
            return UNHEALTHY
        return ONLINE

    # values
    def value(self, prop: BoundProperty, readings: Readings | None = None) -> Value | None:
        """The typed value of a property from the latest readings, or None when the board lacks it."""
        if self.state() == OFFLINE:
            return None
        return _typed(prop, self.readings if readings is None else readings)

    def twins(self, running: RunningDevice, all_properties: bool = False) -> list[TwinValue]:
        """Twins of a device: reported value read back, observedDesired the value worked towards."""
        readings = self.readings
        twins: list[TwinValue] = []
        for prop in running.properties:
            if not (prop.report_to_cloud or all_properties):
                continue
            value = self.value(prop, readings)
            if value is None:
                continue
            try:
                reported = format_twin(value, prop.binding.type)
            except ValueError:
                continue
            twins.append(TwinValue(
                property_name=prop.name, reported=reported,
                observed_desired=self.controller.observed_desired(running.key, prop.name),
                metadata={"type": prop.binding.type.lower(),
                          "timestamp": str(int(self.health.last_sample_wall * 1000))},
            ))
        return twins

    # pacing
    def start(self) -> None:
        """Run the pacing loop in a background thread."""
        self._thread = threading.Thread(target=self._loop, name="runtime", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the pacing loop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        """Sleep until the next route or sink step is due, or until a device, the source or a first sample
        changes what is due; nothing wakes the loop while nothing is due."""
        while not self._stop.is_set():
            self._wake.clear()
            try:
                next_at = self.tick()
            except Exception:  # the loop must survive any single bad cycle
                log.exception("runtime cycle failed")
                next_at = self._clock() + 1.0
            self._wake.wait(min(max(next_at - self._clock(), MIN_SLEEP), MAX_SLEEP))

    def tick(self) -> float:
        """Hand every sink the routes due now (once samples flow), then give each its pacing step; return when
        the next route or step is due."""
        now = self._clock()
        if self.health.last_sample_mono:
            with self._pace:
                devices = self.registry.devices()
                with self._lock:  # one sample and its own time for every route of this step
                    readings, sampled_at = self._readings, self.health.last_sample_wall
                if self.state() == OFFLINE:
                    readings = {}
                for sink in self._sinks:
                    for running in devices:
                        self._deliver_due(sink, running, readings, sampled_at, now)
        wanted = [at for sink in self._sinks if (at := sink.tick(now, self)) is not None]
        if self.health.last_sample_mono:
            with self._lock:
                wanted.extend(self._due.values())
        return min(wanted, default=now + MAX_SLEEP)

    def _deliver_due(self, sink: Sink, running: RunningDevice, readings: Readings, sampled_at: float,
                     now: float) -> None:
        for route in self._routes_of(sink, running):
            if not self._is_due((running.key, sink.name, route.key), now, route.cycle):
                continue
            values = tuple((prop, value) for prop in route.properties
                           if (value := _typed(prop, readings)) is not None)
            if values:
                sink.deliver(Delivery(running, route, values, sampled_at))

    def _routes_of(self, sink: Sink, running: RunningDevice) -> Sequence[Route]:
        """A sink's routes for a device, asked again whenever the device (or its model binding) changed."""
        key = (running.key, sink.name)
        with self._lock:
            cached = self._routes.get(key)
        if cached is not None and cached[0] is running:
            return cached[1]
        routes = tuple(sink.routes(running))
        with self._lock:
            self._routes[key] = (running, routes)
        return routes

    def _is_due(self, key: tuple[DeviceKey, str, str], now: float, cycle: float) -> bool:
        with self._lock:
            due = self._due.get(key, 0.0)
            if now < due:
                return False
            self._due[key] = now + cycle
            return True


def _typed(prop: BoundProperty, readings: Readings) -> Value | None:
    """A reading converted to the property's type; None when absent or not convertible."""
    raw = readings.get(prop.binding.reading)
    if raw is None:
        return None
    try:
        return coerce_reading(raw, prop.binding.type)
    except (TypeError, ValueError):
        return None
