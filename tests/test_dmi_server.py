"""The mapper's DeviceMapperService over a real unix socket, called the way EdgeCore calls it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from common import short_dir
from dmi_support import MemoryDevices, pb_device, pb_model
from google.protobuf import any_pb2

from mapper.devices.model import TwinValue
from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.generated import api_pb2_grpc as pb_grpc
from mapper.dmi.server import MapperServer, prepare_socket_path


class Running:
    """A started MapperServer with its service, socket and recorded (method, code) calls."""

    def __init__(self, directory: Path) -> None:
        self.socket_path = str(directory / "sub" / "jetson.sock")
        self.service = MemoryDevices()
        self.observed: list[tuple[str, str]] = []
        self.server = MapperServer(
            self.socket_path, self.service, on_call=lambda m, c: self.observed.append((m, c))
        )

    def call(self, method: str, request: object) -> object:
        """One call like EdgeCore's dmiclient: fresh channel, 10 s deadline."""
        with grpc.insecure_channel(f"unix:{self.socket_path}") as channel:
            return getattr(pb_grpc.DeviceMapperServiceStub(channel), method)(request, timeout=10)


@pytest.fixture
def running() -> Iterator[Running]:
    """A server on a socket in a not yet existing sub-directory of a short temp dir."""
    with short_dir() as directory:
        state = Running(directory)
        state.server.start()
        try:
            yield state
        finally:
            state.server.stop()


def rpc_error(run: Running, method: str, request: object) -> grpc.RpcError:
    """The error a call fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as caught:
        run.call(method, request)
    return caught.value


def test_create_model_then_register_device(running: Running) -> None:
    """CreateDeviceModel and RegisterDevice reach the service; responses carry names like the Go framework."""
    reply = running.call("CreateDeviceModel", pb.CreateDeviceModelRequest(model=pb_model()))
    assert isinstance(reply, pb.CreateDeviceModelResponse)
    assert (reply.deviceModelName, reply.deviceModelNamespace) == ("jetson-model", "default")
    reply = running.call("RegisterDevice", pb.RegisterDeviceRequest(device=pb_device()))
    assert isinstance(reply, pb.RegisterDeviceResponse)
    assert (reply.deviceName, reply.deviceNamespace) == ("xavier", "default")
    device = running.service.devices[("default", "xavier")]
    assert device.protocol_config == {"interval": 1.0}
    fan = device.property("fan_speed")
    assert fan is not None and fan.desired == "40"
    assert running.observed == [("CreateDeviceModel", "OK"), ("RegisterDevice", "OK")]


def test_update_then_remove(running: Running) -> None:
    """UpdateDevice replaces the device (new desired); RemoveDevice and RemoveDeviceModel forget them."""
    running.call("CreateDeviceModel", pb.CreateDeviceModelRequest(model=pb_model()))
    running.call("RegisterDevice", pb.RegisterDeviceRequest(device=pb_device()))
    changed = pb_device()
    changed.spec.properties[1].desired.value = "80"
    running.call("UpdateDevice", pb.UpdateDeviceRequest(device=changed))
    fan = running.service.devices[("default", "xavier")].property("fan_speed")
    assert fan is not None and fan.desired == "80"
    running.call("UpdateDeviceModel", pb.UpdateDeviceModelRequest(model=pb_model()))
    running.call("RemoveDevice", pb.RemoveDeviceRequest(deviceName="xavier", deviceNamespace="default"))
    running.call(
        "RemoveDeviceModel", pb.RemoveDeviceModelRequest(modelName="jetson-model", modelNamespace="default")
    )
    assert running.service.devices == {} and running.service.models == {}


def test_unknown_model_is_invalid_argument(running: Running) -> None:
    """The service's DeviceRejected becomes INVALID_ARGUMENT with its reason."""
    error = rpc_error(running, "RegisterDevice", pb.RegisterDeviceRequest(device=pb_device(model="nope")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "model 'nope' is unknown" in error.details()  # type: ignore[attr-defined]
    assert running.observed == [("RegisterDevice", "INVALID_ARGUMENT")]


@pytest.mark.parametrize(
    ("method", "request_message", "reason"),
    [
        ("RegisterDevice", pb.RegisterDeviceRequest(), "device is missing"),
        (
            "UpdateDevice",
            pb.UpdateDeviceRequest(device=pb.Device(name="x", namespace="default")),
            "spec.deviceModelReference is empty",
        ),
        (
            "CreateDeviceModel",
            pb.CreateDeviceModelRequest(model=pb.DeviceModel(name="")),
            "deviceModel.name is empty",
        ),
        ("RemoveDevice", pb.RemoveDeviceRequest(), "deviceName is empty"),
    ],
)
def test_malformed_requests_are_invalid_argument(
    running: Running, method: str, request_message: object, reason: str
) -> None:
    """Malformed input is answered INVALID_ARGUMENT with the field named; the server keeps serving."""
    error = rpc_error(running, method, request_message)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert reason in error.details()  # type: ignore[attr-defined]
    assert isinstance(
        running.call("CreateDeviceModel", pb.CreateDeviceModelRequest(model=pb_model())),
        pb.CreateDeviceModelResponse,
    )


def test_undecodable_config_data_is_invalid_argument(running: Running) -> None:
    """A configData Any of an unsupported type is refused naming the key."""
    running.call("CreateDeviceModel", pb.CreateDeviceModelRequest(model=pb_model()))
    device = pb_device()
    device.spec.properties[0].visitors.configData.data["odd"].CopyFrom(
        any_pb2.Any(type_url="type.googleapis.com/google.protobuf.Duration")
    )
    error = rpc_error(running, "RegisterDevice", pb.RegisterDeviceRequest(device=device))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "visitors.configData.odd" in error.details()  # type: ignore[attr-defined]


def test_get_device(running: Running) -> None:
    """GetDevice: NOT_FOUND when unknown, else the device with its twins."""
    error = rpc_error(
        running, "GetDevice", pb.GetDeviceRequest(deviceName="xavier", deviceNamespace="default")
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    running.call("CreateDeviceModel", pb.CreateDeviceModelRequest(model=pb_model()))
    running.call("RegisterDevice", pb.RegisterDeviceRequest(device=pb_device()))
    running.service.twins[("default", "xavier")] = [TwinValue("gpu_usage", "12.5", "")]
    reply = running.call("GetDevice", pb.GetDeviceRequest(deviceName="xavier", deviceNamespace="default"))
    assert isinstance(reply, pb.GetDeviceResponse)
    assert reply.device.name == "xavier" and reply.device.spec.deviceModelReference == "jetson-model"
    assert [(t.propertyName, t.reported.value) for t in reply.device.status.twins] == [("gpu_usage", "12.5")]


def test_service_bug_is_internal_not_a_crash(running: Running) -> None:
    """An unexpected exception in the service answers INTERNAL and the server lives on."""

    def explode(namespace: str, name: str) -> None:
        raise KeyError("boom")

    running.service.remove_model = explode  # type: ignore[method-assign]
    error = rpc_error(running, "RemoveDeviceModel", pb.RemoveDeviceModelRequest(modelName="m"))
    assert error.code() == grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
    assert isinstance(
        running.call("RemoveDevice", pb.RemoveDeviceRequest(deviceName="d")), pb.RemoveDeviceResponse
    )


def test_concurrent_calls(running: Running) -> None:
    """Parallel RegisterDevice calls all land."""
    running.call("CreateDeviceModel", pb.CreateDeviceModelRequest(model=pb_model()))
    threads = [
        threading.Thread(
            target=running.call,
            args=("RegisterDevice", pb.RegisterDeviceRequest(device=pb_device(name=f"dev-{i}"))),
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(running.service.devices) == 8


def test_stale_socket_is_replaced_and_removed_on_stop() -> None:
    """A socket file left by a dead process is removed before binding; stop removes ours."""
    with short_dir() as directory:
        path = directory / "jetson.sock"
        leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        leftover.bind(str(path))
        leftover.close()
        assert path.is_socket()
        server = MapperServer(str(path), MemoryDevices())
        server.start()
        try:
            with grpc.insecure_channel(f"unix:{path}") as channel:
                stub = pb_grpc.DeviceMapperServiceStub(channel)
                assert isinstance(
                    stub.RemoveDeviceModel(pb.RemoveDeviceModelRequest(modelName="m"), timeout=10),
                    pb.RemoveDeviceModelResponse,
                )
        finally:
            server.stop()
        assert not path.exists()


def test_refuses_to_remove_a_regular_file() -> None:
    """A regular file at the socket path is left alone and start fails."""
    with short_dir() as directory:
        path = directory / "jetson.sock"
        path.write_text("precious")
        with pytest.raises(FileExistsError, match="not a unix socket"):
            MapperServer(str(path), MemoryDevices()).start()
        assert path.read_text() == "precious"


def test_prepare_socket_path_removes_only_sockets() -> None:
    """prepare_socket_path creates the directory and unlinks a stale socket (gRPC alone may not)."""
    with short_dir() as directory:
        path = directory / "a" / "b" / "jetson.sock"
        prepare_socket_path(str(path))
        assert path.parent.is_dir()
        leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        leftover.bind(str(path))
        leftover.close()
        prepare_socket_path(str(path))
        assert not path.exists()
