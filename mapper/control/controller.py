"""Desired twin values: validate them, apply them through jtop setters, confirm them in later samples."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mapper.config import ControlConfig
from mapper.control.actuator import Actuator
from mapper.control.writable import MANUAL, WRITABLE, Desired, WritableSpec, same_value
from mapper.devices.registry import BoundProperty, RunningDevice

log = logging.getLogger(__name__)

PENDING, CONVERGED, FAILED, DRIFTED = "pending", "converged", "failed", "drifted"


@dataclass
class Target:
    """A desired value the mapper is working towards for one device property."""

    device: tuple[str, str]
    prop: str
    spec: WritableSpec
    desired: Desired
    blind: bool = False  # parsed before any sample: checked against the board at the next one
    state: str = PENDING
    attempts: int = 0
    last_attempt: float = 0.0
    drift_count: int = 0
    failures: int = 0


@dataclass(frozen=True)
class TargetStatus:
    """What metrics and logs show about a target."""

    device: tuple[str, str]
    prop: str
    desired: str
    state: str
    drift_count: int
    failures: int


class Controller:
    """Owns every target; the sampling thread drives it through on_sample."""

    def __init__(self, actuator: Actuator | None, settings: ControlConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._actuator = actuator
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._targets: dict[tuple[tuple[str, str], str], Target] = {}
        self._snapshot: Mapping[str, Any] | None = None
        self._readings: Mapping[str, Any] = {}

    def set_actuator(self, actuator: Actuator) -> None:
        """Attach the board once the source exists."""
        self._actuator = actuator

    def validate(self, running: RunningDevice) -> list[str]:
        """Problems with the desired values of a device, checked against the board as last seen."""
        problems: list[str] = []
        for prop in running.properties:
            spec = _writable_spec(prop)
            if prop.desired is None or spec is None:
                continue
            try:
                spec.parse(prop.desired, self._snapshot, self._settings.allow_reboot)
            except ValueError as exc:
                problems.append(f"{prop.name}: {exc}")
        problems.extend(_fan_conflict(running))
        return problems

    def set_targets(self, running: RunningDevice) -> None:
        """Adopt the desired values of a (validated) device; only changed values become new targets."""
        with self._lock:
            wanted: set[str] = set()
            for prop in running.properties:
                spec = _writable_spec(prop)
                if prop.desired is None:
                    continue
                if spec is None:
                    log.warning("device %s/%s: %s has a desired value but is not writable; ignored",
                                *running.key, prop.name)
                    continue
                try:
                    desired = spec.parse(prop.desired, self._snapshot, self._settings.allow_reboot)
                except ValueError as exc:  # the board changed since validate(): keep what we had
                    log.error("device %s/%s: %s: %s", *running.key, prop.name, exc)
                    wanted.add(prop.name)
                    continue
                wanted.add(prop.name)
                current = self._targets.get((running.key, prop.name))
                if current is not None and current.desired.text == desired.text:
                    if current.state == FAILED:  # the same value handed over again: one more round
                        log.info("device %s/%s: retrying %s=%s", *running.key, prop.name, desired.text)
                        current.state, current.attempts = PENDING, 0
                    continue
                self._targets[(running.key, prop.name)] = Target(running.key, prop.name, spec, desired,
                                                                 blind=self._snapshot is None)
                log.info("device %s/%s: %s desired %s", *running.key, prop.name, desired.text)
            for key in [k for k in self._targets if k[0] == running.key and k[1] not in wanted]:
                del self._targets[key]

    def write(self, running: RunningDevice, prop_name: str, text: str) -> None:
        """A one-off write (REST device method): validate, then work towards it like a desired value."""
        prop = running.bound(prop_name)
        spec = _writable_spec(prop) if prop else None
        if prop is None or spec is None:
            raise ValueError(f"property {prop_name} of device {running.key[0]}/{running.key[1]} is not writable")
        desired = spec.parse(text, self._snapshot, self._settings.allow_reboot)
        with self._lock:
            profile = next((t.desired.text for k, t in self._targets.items()
                            if k[0] == running.key and t.spec.reading == "fan.profile"), None)
            if spec.reading == "fan.speed" and profile not in (None, MANUAL):
                raise ValueError(f"fan_speed needs fan_profile {MANUAL!r} but the device's desired fan_profile "
                                 f"is {profile!r}")
            self._targets[(running.key, prop_name)] = Target(running.key, prop_name, spec, desired,
                                                             blind=self._snapshot is None)

    def forget_device(self, key: tuple[str, str]) -> None:
        """Drop every target of a removed device."""
        with self._lock:
            for k in [k for k in self._targets if k[0] == key]:
                del self._targets[k]

    def observed_desired(self, key: tuple[str, str], prop: str) -> str:
        """The desired value being worked towards, as twin text ("" when none)."""
        with self._lock:
            target = self._targets.get((key, prop))
            return target.desired.text if target else ""

    def statuses(self) -> list[TargetStatus]:
        """A snapshot of every target for metrics."""
        with self._lock:
            return [TargetStatus(t.device, t.prop, t.desired.text, t.state, t.drift_count, t.failures)
                    for t in self._targets.values()]

    def on_sample(self, snapshot: Mapping[str, Any], readings: Mapping[str, Any]) -> None:
        """Confirm, retry, give up or notice drift, one step per sample."""
        with self._lock:
            self._snapshot = snapshot
            self._readings = readings
            targets = list(self._targets.values())
        for target in targets:
            if target.blind:
                self._check_blind(target, snapshot)
            self._step(target, readings)

    def _check_blind(self, target: Target, snapshot: Mapping[str, Any]) -> None:
        """A value accepted before the first sample: parse it again now that the board is known."""
        target.blind = False
        try:
            target.desired = target.spec.parse(target.desired.text, snapshot, self._settings.allow_reboot)
        except ValueError as exc:
            target.state = FAILED
            target.failures += 1
            log.error("device %s/%s: desired %s=%s cannot be applied to this board: %s", *target.device,
                      target.prop, target.desired.text, exc)

    def _step(self, target: Target, readings: Mapping[str, Any]) -> None:
        now = self._clock()
        current = readings.get(target.spec.reading)
        reached = current is not None and same_value(target.desired, current)
        if target.state in (CONVERGED, DRIFTED):
            if reached:
                target.state = CONVERGED
            elif target.state == CONVERGED:
                target.drift_count += 1
                log.warning("device %s/%s: %s drifted to %s (desired %s)%s", *target.device, target.prop,
                            current, target.desired.text,
                            "; re-applying" if self._settings.reapply_on_drift else "")
                target.state = PENDING if self._settings.reapply_on_drift else DRIFTED
                target.attempts = 0
            return
        if reached:
            if target.state != CONVERGED:
                log.info("device %s/%s: %s converged to %s", *target.device, target.prop, target.desired.text)
            target.state = CONVERGED
            return
        if target.state == FAILED:
            return
        if target.attempts and now - target.last_attempt < self._settings.confirm_timeout:
            return
        if target.attempts >= self._settings.max_attempts:
            target.state = FAILED
            target.failures += 1
            log.error("device %s/%s: gave up setting %s to %s after %d attempts; the board still reports %s",
                      *target.device, target.prop, target.desired.text, target.attempts, current)
            return
        self._apply(target, now)

    def _apply(self, target: Target, now: float) -> None:
        if self._actuator is None:
            return
        try:
            if self._snapshot is not None:  # the board may have changed since the value was accepted
                target.desired = target.spec.parse(target.desired.text, self._snapshot, self._settings.allow_reboot)
            target.spec.apply(self._actuator, target.desired, self._snapshot or {})
        except ValueError as exc:
            target.state = FAILED
            target.failures += 1
            log.error("device %s/%s: board refused %s=%s: %s", *target.device, target.prop,
                      target.desired.text, exc)
            return
        except RuntimeError as exc:
            log.warning("device %s/%s: cannot set %s now (%s); will retry", *target.device, target.prop, exc)
            return
        target.attempts += 1
        target.last_attempt = now
        log.info("device %s/%s: set %s to %s (attempt %d/%d)", *target.device, target.prop,
                 target.desired.text, target.attempts, self._settings.max_attempts)


def _fan_conflict(running: RunningDevice) -> list[str]:
    """A desired fan speed only holds in the manual profile: refuse a Device asking for both otherwise."""
    desired = {p.binding.reading: p.desired for p in running.properties if p.desired is not None}
    profile = desired.get("fan.profile")
    if "fan.speed" in desired and profile is not None and profile.strip() != MANUAL:
        return [f"fan_speed needs fan_profile {MANUAL!r} (desired fan_profile is {profile!r}); "
                "drop one of the two desired values"]
    return []


def _writable_spec(prop: BoundProperty | None) -> WritableSpec | None:
    """The actuator spec of a property the model declares ReadWrite, if any."""
    if prop is None or not prop.binding.writable:
        return None
    return WRITABLE.get(prop.binding.reading)
