"""Thread-safe store of DeviceModels and running Devices, with all-or-nothing validation."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from mapper.devices.catalogue import PropertyBinding, bind_property
from mapper.devices.limits import join_problems, shown, twin_name_problem
from mapper.devices.model import Device, DeviceModel, DeviceRejected
from mapper.devices.values import validate_cycle_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoundProperty:
    """A Device property with how to read it and its effective cycles."""

    name: str
    binding: PropertyBinding
    collect_cycle: float
    report_cycle: float
    report_to_cloud: bool
    desired: str | None


@dataclass(frozen=True)
class RunningDevice:
    """A validated Device ready to run: its model and bound properties."""

    device: Device
    model: DeviceModel
    properties: tuple[BoundProperty, ...]

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the device: (namespace, name)."""
        return self.device.key

    def bound(self, name: str) -> BoundProperty | None:
        """The bound property called `name`, if the device lists it."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, BoundProperty]:
        return {p.name: p for p in self.properties}


DesiredValidator = Callable[[RunningDevice], list[str]]
OutputCheck = Callable[[Device], list[str]]


def bind_device(device: Device, model: DeviceModel, protocol: str) -> RunningDevice:
    """Check a Device against its model and the catalogue; raise DeviceRejected listing every problem."""
    problems: list[str] = []
    if device.protocol != protocol:
        problems.append(
            f"spec.protocol.protocolName is {device.protocol!r}, this mapper serves {protocol!r}"
        )
    bound: list[BoundProperty] = []
    seen: set[str] = set()
    for prop in device.properties:
        if prop.name in seen:
            problems.append(f"property {shown(prop.name)} is listed twice")
            continue
        seen.add(prop.name)
        if (name_problem := twin_name_problem(prop.name)) is not None:
            problems.append(name_problem)
            continue
        model_prop = model.property(prop.name)
        if model_prop is None and "reading" not in prop.visitor_config:
            problems.append(
                f"property {shown(prop.name)} is not declared in DeviceModel {model.name!r}"
            )
            continue
        try:
            binding = bind_property(prop, model_prop)
        except DeviceRejected as exc:
            problems.append(str(exc))
            continue
        collect, collect_warning = validate_cycle_ms(prop.collect_cycle_ms, f"{prop.name}.collectCycle")
        report, report_warning = validate_cycle_ms(prop.report_cycle_ms, f"{prop.name}.reportCycle")
        for warning in (collect_warning, report_warning):
            if warning:
                log.warning("device %s/%s: %s", device.namespace, device.name, warning)
        bound.append(BoundProperty(
            name=prop.name, binding=binding, collect_cycle=collect / 1000.0, report_cycle=report / 1000.0,
            report_to_cloud=prop.report_to_cloud, desired=prop.desired,
        ))
    for method in device.methods:
        problems.extend(
            f"method {shown(method.name)} names property {shown(name)} that the device does not list"
            for name in method.property_names if name not in seen
        )
    if problems:
        raise DeviceRejected(join_problems(f"device {device.namespace}/{device.name}", problems))
    return RunningDevice(device=device, model=model, properties=tuple(bound))


class DeviceRegistry:
    """Models and devices known to the mapper; a device is replaced only by a valid one."""

    def __init__(self, protocol: str, validate_desired: DesiredValidator | None = None,
                 check_outputs: OutputCheck | None = None) -> None:
        self._protocol = protocol
        self._validate_desired = validate_desired
        self._check_outputs = check_outputs
        self._lock = threading.RLock()
        self._models: dict[tuple[str, str], DeviceModel] = {}
        self._devices: dict[tuple[str, str], RunningDevice] = {}

    def set_desired_validator(self, validate_desired: DesiredValidator) -> None:
        """Check desired values with the controller before a device is accepted."""
        self._validate_desired = validate_desired

    def set_output_check(self, check_outputs: OutputCheck) -> None:
        """Let the sinks refuse a device whose push or database methods they cannot serve."""
        self._check_outputs = check_outputs

    def upsert_model(self, model: DeviceModel) -> list[tuple[str, str]]:
        """Store a model; re-bind its devices; return keys of devices the new model no longer fits."""
        with self._lock:
            self._models[model.key] = model
            broken: list[tuple[str, str]] = []
            for key, running in list(self._devices.items()):
                if running.device.model_key != model.key:
                    continue
                try:
                    self._devices[key] = bind_device(running.device, model, self._protocol)
                except DeviceRejected as exc:
                    log.error("%s; keeping the device on its previous model", exc)
                    broken.append(key)
            return broken

    def remove_model(self, namespace: str, name: str) -> None:
        """Forget a model (devices using it keep running on their copy)."""
        with self._lock:
            self._models.pop((namespace, name), None)

    def model(self, namespace: str, name: str) -> DeviceModel | None:
        """A stored model."""
        with self._lock:
            return self._models.get((namespace, name))

    def upsert_device(self, device: Device, strict_desired: bool = True) -> RunningDevice:
        """Validate and store a device atomically; raise DeviceRejected and keep the old one on error.

        With strict_desired False (registration, standalone files: there is no older spec to keep), bad
        desired values are logged and left unapplied while the device's readings still run.
        """
        with self._lock:
            model = self._models.get(device.model_key)
            if model is None:
                known = ", ".join(f"{ns}/{n}" for ns, n in sorted(self._models)) or "none"
                raise DeviceRejected(
                    f"device {device.namespace}/{device.name}: DeviceModel {device.namespace}/"
                    f"{device.model_name} is unknown to the mapper (known models: {known})"
                )
            running = bind_device(device, model, self._protocol)
            where = f"device {device.namespace}/{device.name}"
            if self._check_outputs is not None and (problems := self._check_outputs(device)):
                raise DeviceRejected(join_problems(where, problems))
            if self._validate_desired is not None:
                problems = self._validate_desired(running)
                if problems and strict_desired:
                    raise DeviceRejected(join_problems(where, problems))
                for problem in problems:
                    log.error("device %s/%s: desired value not applied: %s", *device.key, problem)
            self._devices[device.key] = running
            return running

    def remove_device(self, namespace: str, name: str) -> RunningDevice | None:
        """Stop running a device; return what was removed."""
        with self._lock:
            return self._devices.pop((namespace, name), None)

    def device(self, namespace: str, name: str) -> RunningDevice | None:
        """A running device."""
        with self._lock:
            return self._devices.get((namespace, name))

    def devices(self) -> Sequence[RunningDevice]:
        """All running devices, in a stable order."""
        with self._lock:
            return [self._devices[k] for k in sorted(self._devices)]

    def replace_all(self, models: Sequence[DeviceModel], devices: Sequence[Device]) -> list[str]:
        """Make the store equal to what EdgeCore handed over; return problems of rejected devices."""
        problems: list[str] = []
        with self._lock:
            self._models = {m.key: m for m in models}
            wanted = {d.key for d in devices}
            for key in [k for k in self._devices if k not in wanted]:
                del self._devices[key]
            for device in devices:
                try:
                    self.upsert_device(device, strict_desired=False)
                except DeviceRejected as exc:
                    problems.append(str(exc))
        return problems
