"""DMI input EdgeCore could send that the mapper must refuse early and clearly: twin names EdgeCore cannot take,
error texts too long for a gRPC status, devices too large to convert in time."""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import pytest
from common import short_dir
from http_support import DEVICE_FILES

from mapper.app import MapperApp
from mapper.config import MapperConfig
from mapper.dmi import convert
from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.generated import api_pb2_grpc as pb_grpc
from mapper.dmi.manifests import load_manifests

MAX_DETAILS = 4096  # bytes of a status message; a Python gRPC client refuses more than 16 KiB of metadata


@dataclass
class Dmi:
    """A mapper app serving DMI on its socket, a stub as EdgeCore would call it, and the bundled model/device."""

    app: MapperApp
    stub: pb_grpc.DeviceMapperServiceStub
    model: pb.DeviceModel
    device: pb.Device

    def register(self, device: pb.Device, timeout: float = 10.0) -> tuple[grpc.StatusCode, str]:
        """RegisterDevice; (code, details)."""
        return self.call(lambda: self.stub.RegisterDevice(pb.RegisterDeviceRequest(device=device), timeout=timeout))

    def update(self, device: pb.Device, timeout: float = 10.0) -> tuple[grpc.StatusCode, str]:
        """UpdateDevice; (code, details)."""
        return self.call(lambda: self.stub.UpdateDevice(pb.UpdateDeviceRequest(device=device), timeout=timeout))

    @staticmethod
    def call(rpc: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
        try:
            rpc()
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
        return grpc.StatusCode.OK, ""


@pytest.fixture(scope="module")
def dmi() -> Iterator[Dmi]:
    """The mapper's DMI server (standalone config, so no EdgeCore is dialled) with the bundled model created."""
    with short_dir() as workdir:
        app = MapperApp(MapperConfig(socket_path=str(workdir / "jetson.sock"), standalone_files=DEVICE_FILES,
                                     standalone_dmi=True, node_name="test-node"))
        assert app.server is not None
        app.server.start()
        (model,), (device,) = load_manifests(list(DEVICE_FILES))
        for prop in device.spec.properties:
            prop.ClearField("pushMethod")
        with grpc.insecure_channel(f"unix:{workdir / 'jetson.sock'}") as channel:
            stub = pb_grpc.DeviceMapperServiceStub(channel)
            stub.CreateDeviceModel(pb.CreateDeviceModelRequest(model=model), timeout=10)
            yield Dmi(app, stub, model, device)
        app.server.stop()
        app.sinks.close()


def renamed(device: pb.Device, name: str) -> pb.Device:
    """A copy of a Device under another name."""
    other = copy.deepcopy(device)
    other.name = name
    return other


@pytest.mark.parametrize(("bad", "shown"), [
    ("gpu_ü x", "'gpu_ü x'"),
    ("g" * 10000, "'" + "g" * 40 + "…' (10000 characters)"),
    ("gpu usage", "'gpu usage'"),
])
def test_property_names_edgecore_cannot_take_are_refused(dmi: Dmi, bad: str, shown: str) -> None:
    device = renamed(dmi.device, "oddly-named")
    device.spec.properties[0].name = bad  # it keeps its visitor, so it still binds to a reading
    for call in (dmi.register, dmi.update):
        code, details = call(device)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, details
        assert f"property {shown}: EdgeCore takes twin names of 1 to 128 of a-z A-Z 0-9 - _ . , : / @ #" in details
        assert len(details.encode()) <= MAX_DETAILS
    assert dmi.app.registry.device("default", "oddly-named") is None
    assert dmi.register(renamed(dmi.device, "well-named"))[0] == grpc.StatusCode.OK


def test_error_details_are_capped_with_a_count(dmi: Dmi, caplog: pytest.LogCaptureFixture) -> None:
    device = renamed(dmi.device, "undeclared")
    template = device.spec.properties[0]
    del device.spec.properties[:]
    for index in range(1000):
        prop = device.spec.properties.add()
        prop.CopyFrom(template)
        prop.name = f"undeclared_{index}"
        prop.visitors.configData.Clear()  # no reading: must be declared in the model, which it is not
    code, details = dmi.register(device)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details.startswith("device default/undeclared: property 'undeclared_0' is not declared in DeviceModel")
    assert len(details.encode()) <= MAX_DETAILS
    assert details.endswith(" more problems"), details[-200:]
    lines = [r.getMessage() for r in caplog.records if "undeclared" in r.getMessage()]
    assert lines and max(len(line.encode()) for line in lines) <= MAX_DETAILS + 200


def many_properties(dmi: Dmi, count: int, name: str = "big") -> tuple[pb.DeviceModel, pb.Device]:
    """A model declaring `count` FLOAT properties and a Device listing them all, each bound to gpu.usage."""
    model = copy.deepcopy(dmi.model)
    model.name = f"{name}-model"
    device = renamed(dmi.device, name)
    device.spec.deviceModelReference = model.name
    template = next(p for p in device.spec.properties if p.name == "gpu_usage")
    del model.spec.properties[:]
    del device.spec.properties[:]
    del device.spec.methods[:]
    for index in range(count):
        model.spec.properties.add(name=f"p{index}", type="FLOAT", accessMode="ReadOnly")
        prop = device.spec.properties.add()
        prop.CopyFrom(template)
        prop.name = f"p{index}"
    return model, device


def test_a_device_with_too_many_properties_is_refused_at_once(dmi: Dmi) -> None:
    model, device = many_properties(dmi, 5000)  # about 0.5 MiB: under the message size limit
    code, details = dmi.register(device, timeout=5)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details == "device default/big: 5000 properties; the mapper takes at most 1000 per device"
    code, details = dmi.call(lambda: dmi.stub.CreateDeviceModel(pb.CreateDeviceModelRequest(model=model), timeout=5))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert details == "deviceModel default/big-model: 5000 properties; the mapper takes at most 1000 per model"


def test_a_request_over_the_size_limit_is_refused_by_grpc(dmi: Dmi) -> None:
    device = renamed(dmi.device, "huge")
    device.spec.properties[0].desired.value = "x" * (2 * 1024 * 1024)
    code, details = dmi.register(device, timeout=5)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert "larger than max" in details


def lines_run(work: Callable[[], None]) -> int:
    """How many lines of the mapper package `work` executes: a count of work done, not of time."""
    package = str(Path(convert.__file__).resolve().parents[1])
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(package) else None

    sys.settrace(calls)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def test_converting_and_binding_a_device_is_linear_in_its_properties(
    dmi: Dmi, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mapper")  # the runtime's info lines are not the work measured
    work = {}
    for count in (250, 500):
        model, device = many_properties(dmi, count, name=f"linear{count}")

        def convert_and_bind(model: pb.DeviceModel = model, device: pb.Device = device) -> None:
            dmi.app.runtime.upsert_model(convert.model_from_pb(model))
            dmi.app.runtime.upsert_device(convert.device_from_pb(device))

        work[count] = lines_run(convert_and_bind)
    assert work[500] / work[250] < 2.2, work  # main before issue 14: 3.5 (126513 and 440393 lines)
