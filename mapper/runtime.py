"""The running mapper: one sample feeds twins, MQTT and metrics; reports are paced under EdgeCore's budget."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from mapper.control import Controller
from mapper.devices import BoundProperty, DeviceRegistry, RunningDevice
from mapper.model import Device, DeviceModel, TwinValue
from mapper.mqtt_format import device_payload, property_payload
from mapper.pacing import DmiPacer, Reporter
from mapper.readings import Readings, normalise
from mapper.values import coerce_reading, format_twin

log = logging.getLogger(__name__)

ONLINE, OFFLINE, UNHEALTHY = "online", "offline", "unhealthy"
TICK = 0.2


class Publisher(Protocol):
    """The MQTT side (MqttPublisher implements it)."""

    def publish(self, address: str, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...


@dataclass
class Health:
    """Counters and facts about the mapper itself, read by /metrics and /readyz."""

    source_up: bool = False
    source_reason: str = "not started"
    last_sample_wall: float = 0.0
    last_sample_mono: float = 0.0
    reports_ok: Counter[tuple[str, str]] = field(default_factory=Counter)
    sink_errors: Counter[str] = field(default_factory=Counter)


class Runtime:
    """Implements the DMI DeviceService and paces every output from the latest readings."""

    def __init__(self, registry: DeviceRegistry, controller: Controller, source_interval: float,
                 reporter: Reporter | None = None, publisher: Publisher | None = None,
                 dmi_rate: float = 0.5, device_topic: Callable[[str, str], str | None] | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.registry = registry
        self.controller = controller
        self.health = Health()
        self._interval = source_interval
        self._reporter = reporter
        self._publisher = publisher
        self.pacer = DmiPacer(dmi_rate)
        self.health.reports_ok = self.pacer.reports_ok
        self._device_topic = device_topic
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._readings: Readings = {}
        self._snapshot: Mapping[str, Any] | None = None
        self._due: dict[tuple[tuple[str, str], str], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_reporter(self, reporter: Reporter | None) -> None:
        """Attach the EdgeCore client once it exists (it needs the runtime first)."""
        self._reporter = reporter

    # DeviceService (called by the DMI server, EdgeCore registration and standalone loading)
    def upsert_model(self, model: DeviceModel) -> None:
        """Create or update a DeviceModel."""
        self.registry.upsert_model(model)

    def remove_model(self, namespace: str, name: str) -> None:
        """Remove a DeviceModel."""
        self.registry.remove_model(namespace, name)

    def upsert_device(self, device: Device, strict_desired: bool = True) -> None:
        """Start or replace a device; raises DeviceRejected and keeps the old device on a bad spec."""
        running = self.registry.upsert_device(device, strict_desired)
        self.controller.set_targets(running)
        with self._lock:
            for key in [k for k in self._due if k[0] == device.key]:
                del self._due[key]
        self.pacer.forget(device.key)
        log.info("device %s/%s running with %d properties", *device.key, len(running.properties))

    def remove_device(self, namespace: str, name: str) -> None:
        """Stop a device."""
        if self.registry.remove_device(namespace, name) is not None:
            log.info("device %s/%s removed", namespace, name)
        self.controller.forget_device((namespace, name))

    def get_device(self, namespace: str, name: str) -> tuple[Device, Sequence[TwinValue]] | None:
        """A device with its current twins."""
        running = self.registry.device(namespace, name)
        if running is None:
            return None
        return running.device, self.twins(running, all_properties=True)

    def replace_all(self, models: Sequence[DeviceModel], devices: Sequence[Device]) -> None:
        """Adopt the full device list EdgeCore handed over at (re-)registration."""
        for problem in self.registry.replace_all(models, devices):
            log.error("rejected at registration: %s", problem)
        for running in self.registry.devices():
            self.controller.set_targets(running)
        with self._lock:
            self._due.clear()
        self.pacer.reset()

    # source callbacks
    def on_sample(self, snapshot: Mapping[str, Any]) -> None:
        """A new jtop sample: normalise once, let the controller confirm its targets."""
        readings = normalise(snapshot)
        with self._lock:
            self._readings = readings
            self._snapshot = snapshot
            self.health.last_sample_wall = float(snapshot.get("time") or self._wall())
            self.health.last_sample_mono = self._clock()
        self.controller.on_sample(snapshot, readings)

    def on_availability(self, available: bool, reason: str) -> None:
        """The jtop service came or went."""
        self.health.source_up = available
        self.health.source_reason = reason
        quiet = available or self._stop.is_set()  # going down on shutdown is not an error
        (log.info if quiet else log.error)("jtop source %s: %s", "up" if available else "down", reason)

    @property
    def readings(self) -> Readings:
        """The latest readings (empty before the first sample)."""
        with self._lock:
            return self._readings

    @property
    def snapshot(self) -> Mapping[str, Any] | None:
        """The latest raw snapshot."""
        with self._lock:
            return self._snapshot

    def state(self) -> str:
        """The device state word EdgeCore accepts: online, offline or unhealthy."""
        if not self.health.source_up:
            return OFFLINE
        stale_after = 3 * self._interval + 2.0
        if not self.health.last_sample_mono or self._clock() - self.health.last_sample_mono > stale_after:
            return UNHEALTHY
        return ONLINE

    # values
    def value(self, prop: BoundProperty, readings: Readings | None = None) -> Any:
        """The typed value of a property from the latest readings, or None when the board lacks it."""
        raw = (self.readings if readings is None else readings).get(prop.binding.reading)
        if raw is None or self.state() == OFFLINE:
            return None
        try:
            return coerce_reading(raw, prop.binding.type)
        except (TypeError, ValueError):
            return None

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
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self.tick()
            except Exception:  # the loop must survive any single bad cycle
                log.exception("runtime cycle failed")

    def tick(self) -> None:
        """Publish whatever is due now; send the one DMI call the budget allows."""
        now = self._clock()
        devices = self.registry.devices()
        for running in devices:
            self._publish_due(running, now)
        if self._reporter is not None and self.health.last_sample_mono:
            self.pacer.step(self._reporter, devices, now, self.state(), self.twins)
            self.health.sink_errors["dmi"] = self.pacer.failures

    def _is_due(self, key: tuple[tuple[str, str], str], now: float, cycle: float) -> bool:
        with self._lock:
            due = self._due.get(key, 0.0)
            if now < due:
                return False
            self._due[key] = now + cycle
            return True

    def _publish_due(self, running: RunningDevice, now: float) -> None:
        if self._publisher is None or not self.health.last_sample_mono:
            return
        for prop in running.properties:
            push = running.device.property(prop.name)
            mqtt = push.mqtt if push else None
            if mqtt is None or not self._is_due((running.key, "mqtt:" + prop.name), now, prop.report_cycle):
                continue
            value = self.value(prop)
            if value is None:
                continue
            payload = property_payload(running.key[0], running.key[1], prop.name, value,
                                       prop.binding.type, self.health.last_sample_wall)
            self._publisher.publish(mqtt.address, mqtt.topic, payload, mqtt.qos, mqtt.retained)
        self._publish_device_topic(running, now)

    def _publish_device_topic(self, running: RunningDevice, now: float) -> None:
        """All properties of a device in one message, on the first broker the device pushes to."""
        assert self._publisher is not None
        topic = self._device_topic(*running.key) if self._device_topic else None
        pushes = [p.mqtt for p in running.device.properties if p.mqtt is not None]
        if topic is None or not pushes or not running.properties:
            return
        cycle = min(p.report_cycle for p in running.properties)
        if not self._is_due((running.key, "mqtt-device"), now, cycle):
            return
        values = {p.name: (v, p.binding.type) for p in running.properties if (v := self.value(p)) is not None}
        if values:
            payload = device_payload(running.key[0], running.key[1], values, self.health.last_sample_wall)
            self._publisher.publish(pushes[0].address, topic, payload, pushes[0].qos, False)
