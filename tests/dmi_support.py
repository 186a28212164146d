"""Helpers shared by the DMI tests: short socket dirs and an in-memory DeviceService."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from google.protobuf import wrappers_pb2

from mapper.devices.model import Device, DeviceModel, DeviceRejected, TwinValue
from mapper.dmi.generated import api_pb2 as pb


class MemoryDevices:
    """A DeviceService keeping models and devices in dicts; refuses devices whose model is unknown."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], DeviceModel] = {}
        self.devices: dict[tuple[str, str], Device] = {}
        self.twins: dict[tuple[str, str], list[TwinValue]] = {}
        self.lock = threading.Lock()

    def upsert_model(self, model: DeviceModel) -> None:
        """Store a model."""
        with self.lock:
            self.models[model.key] = model

    def remove_model(self, namespace: str, name: str) -> None:
        """Drop a model."""
        with self.lock:
            self.models.pop((namespace, name), None)

    def upsert_device(self, device: Device) -> None:
        """Store a device whose model is known."""
        with self.lock:
            if device.model_key not in self.models:
                raise DeviceRejected(f"device {device.name}: model {device.model_name!r} is unknown")
            self.devices[device.key] = device

    def remove_device(self, namespace: str, name: str) -> None:
        """Drop a device."""
        with self.lock:
            self.devices.pop((namespace, name), None)

    def get_device(self, namespace: str, name: str) -> tuple[Device, Sequence[TwinValue]] | None:
        """A device with its twins."""
        with self.lock:
            device = self.devices.get((namespace, name))
            return None if device is None else (device, self.twins.get((namespace, name), []))


def pb_model(name: str = "jetson-model", namespace: str = "default") -> pb.DeviceModel:
    """A small Jetson DeviceModel."""
    model = pb.DeviceModel(name=name, namespace=namespace)
    model.spec.properties.add(name="gpu_usage", type="FLOAT", accessMode="ReadOnly", unit="%")
    model.spec.properties.add(
        name="fan_speed", type="FLOAT", accessMode="ReadWrite", minimum="0", maximum="100"
    )
    return model


def pb_device(
    name: str = "xavier", namespace: str = "default", model: str = "jetson-model", protocol: str = "jetson"
) -> pb.Device:
    """A Jetson Device using `model`, with a FloatValue and a StringValue in configData."""
    device = pb.Device(name=name, namespace=namespace)
    device.spec.deviceModelReference = model
    device.spec.protocol.protocolName = protocol
    device.spec.protocol.configData.data["interval"].Pack(wrappers_pb2.FloatValue(value=1.0))
    prop = device.spec.properties.add(
        name="gpu_usage", reportCycle=5000, collectCycle=1000, reportToCloud=True
    )
    prop.visitors.protocolName = protocol
    prop.visitors.configData.data["reading"].Pack(wrappers_pb2.StringValue(value="gpu.usage"))
    fan = device.spec.properties.add(name="fan_speed", reportToCloud=True)
    fan.desired.value = "40"
    return device
