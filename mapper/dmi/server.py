"""The mapper's DeviceMapperService: EdgeCore calls it on the mapper's unix socket."""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from typing import Protocol, TypeVar

import grpc

from mapper.devices.limits import MAX_MESSAGE_BYTES, capped
from mapper.devices.model import Device, DeviceModel, DeviceRejected, TwinValue
from mapper.devices.redact import redact
from mapper.dmi import convert
from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.generated import api_pb2_grpc as pb_grpc
from mapper.dmi.sockets import SocketIdentity, SocketWatch, prepare_socket_path, socket_identity

__all__ = ["DeviceService", "MapperServer", "prepare_socket_path"]

log = logging.getLogger(__name__)

Response = TypeVar("Response")
CallObserver = Callable[[str, str], None]


class DeviceService(Protocol):
    """What the server delegates to: the runtime's device registry."""

    def upsert_model(self, model: DeviceModel) -> None:
        """Add or replace a DeviceModel."""

    def remove_model(self, namespace: str, name: str) -> None:
        """Forget a DeviceModel (no error when unknown)."""

    def upsert_device(self, device: Device) -> None:
        """Add or replace a Device; raises DeviceRejected when it cannot run."""

    def remove_device(self, namespace: str, name: str) -> None:
        """Stop and forget a Device (no error when unknown)."""

    def get_device(self, namespace: str, name: str) -> tuple[Device, Sequence[TwinValue]] | None:
        """The Device and its latest twins, or None when unknown."""


class _Refused(Exception):
    """A request answered with a non-OK status code."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class _Servicer(pb_grpc.DeviceMapperServiceServicer):
    """Translates each RPC into a DeviceService call and errors into status codes."""

    def __init__(self, service: DeviceService, on_call: CallObserver | None) -> None:
        self._service = service
        self._on_call = on_call

    def _answer(self, method: str, context: grpc.ServicerContext, empty: Response,
                handle: Callable[[], Response]) -> Response:
        """Run `handle`, map failures to status codes, report (method, code) and never raise."""
        code = grpc.StatusCode.OK
        result = empty
        try:
            result = handle()
        except _Refused as refused:
            code, details = refused.code, refused.details
        except DeviceRejected as rejected:
            code, details = grpc.StatusCode.INVALID_ARGUMENT, str(rejected)
        except Exception as exc:  # a bug must not kill the server thread or leak a traceback
            log.exception("DMI %s failed", method)
            code, details = grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}"
        if code is not grpc.StatusCode.OK:
            details = capped(redact(details))
            log.warning("DMI %s answered %s: %s", method, code.name, details)
            context.set_code(code)
            context.set_details(details)
            result = empty
        if self._on_call is not None:
            try:
                self._on_call(method, code.name)
            except Exception:
                log.exception("on_call observer failed")
        return result

    def RegisterDevice(self, request: pb.RegisterDeviceRequest,
                       context: grpc.ServicerContext) -> pb.RegisterDeviceResponse:
        """Add a Device (EdgeCore: a Device was bound to this node)."""
        def handle() -> pb.RegisterDeviceResponse:
            device = self._upsert_device(request.device if request.HasField("device") else None)
            return pb.RegisterDeviceResponse(deviceName=device.name, deviceNamespace=device.namespace)
        return self._answer("RegisterDevice", context, pb.RegisterDeviceResponse(), handle)

    def UpdateDevice(self, request: pb.UpdateDeviceRequest,
                     context: grpc.ServicerContext) -> pb.UpdateDeviceResponse:
        """Replace a Device (spec change, new desired values)."""
        def handle() -> pb.UpdateDeviceResponse:
            self._upsert_device(request.device if request.HasField("device") else None)
            return pb.UpdateDeviceResponse()
        return self._answer("UpdateDevice", context, pb.UpdateDeviceResponse(), handle)

    def _upsert_device(self, message: pb.Device | None) -> Device:
        """Convert and hand a Device to the service."""
        if message is None:
            raise DeviceRejected("device is missing from the request")
        device = convert.device_from_pb(message)
        self._service.upsert_device(device)
        return device

    def RemoveDevice(self, request: pb.RemoveDeviceRequest,
                     context: grpc.ServicerContext) -> pb.RemoveDeviceResponse:
        """Forget a Device."""
        def handle() -> pb.RemoveDeviceResponse:
            _require_name(request.deviceName, "deviceName")
            self._service.remove_device(request.deviceNamespace, request.deviceName)
            return pb.RemoveDeviceResponse()
        return self._answer("RemoveDevice", context, pb.RemoveDeviceResponse(), handle)

    def CreateDeviceModel(self, request: pb.CreateDeviceModelRequest,
                          context: grpc.ServicerContext) -> pb.CreateDeviceModelResponse:
        """Add a DeviceModel."""
        def handle() -> pb.CreateDeviceModelResponse:
            model = self._upsert_model(request.model if request.HasField("model") else None)
            return pb.CreateDeviceModelResponse(deviceModelName=model.name,
                                                deviceModelNamespace=model.namespace)
        return self._answer("CreateDeviceModel", context, pb.CreateDeviceModelResponse(), handle)

    def UpdateDeviceModel(self, request: pb.UpdateDeviceModelRequest,
                          context: grpc.ServicerContext) -> pb.UpdateDeviceModelResponse:
        """Replace a DeviceModel (unknown ones are added)."""
        def handle() -> pb.UpdateDeviceModelResponse:
            self._upsert_model(request.model if request.HasField("model") else None)
            return pb.UpdateDeviceModelResponse()
        return self._answer("UpdateDeviceModel", context, pb.UpdateDeviceModelResponse(), handle)

    def _upsert_model(self, message: pb.DeviceModel | None) -> DeviceModel:
        """Convert and hand a DeviceModel to the service."""
        if message is None:
            raise DeviceRejected("model is missing from the request")
        model = convert.model_from_pb(message)
        self._service.upsert_model(model)
        return model

    def RemoveDeviceModel(self, request: pb.RemoveDeviceModelRequest,
                          context: grpc.ServicerContext) -> pb.RemoveDeviceModelResponse:
        """Forget a DeviceModel."""
        def handle() -> pb.RemoveDeviceModelResponse:
            _require_name(request.modelName, "modelName")
            self._service.remove_model(request.modelNamespace, request.modelName)
            return pb.RemoveDeviceModelResponse()
        return self._answer("RemoveDeviceModel", context, pb.RemoveDeviceModelResponse(), handle)

    def GetDevice(self, request: pb.GetDeviceRequest,
                  context: grpc.ServicerContext) -> pb.GetDeviceResponse:
        """A Device with its latest twins; NOT_FOUND when unknown."""
        def handle() -> pb.GetDeviceResponse:
            _require_name(request.deviceName, "deviceName")
            found = self._service.get_device(request.deviceNamespace, request.deviceName)
            if found is None:
                raise _Refused(grpc.StatusCode.NOT_FOUND,
                               f"device {request.deviceNamespace}/{request.deviceName} not found")
            device, twins = found
            return pb.GetDeviceResponse(device=convert.device_to_pb(device, twins))
        return self._answer("GetDevice", context, pb.GetDeviceResponse(), handle)


def _require_name(value: str, field: str) -> None:
    """Refuse a request whose name field is empty."""
    if not value:
        raise DeviceRejected(f"{field} is empty")


class MapperServer:
    """gRPC DeviceMapperService bound to `unix:<socket_path>`; bound again when the socket file goes away."""

    def __init__(self, socket_path: str, service: DeviceService,
                 on_call: CallObserver | None = None, max_workers: int = 4,
                 on_rebound: Callable[[], None] | None = None) -> None:
        self.socket_path = os.path.abspath(socket_path)
        self._servicer = _Servicer(service, on_call)
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self._lock = threading.Lock()
        self._watch = SocketWatch(self.socket_path, self._bind_again, on_rebound or (lambda: None))

    @property
    def problem(self) -> str | None:
        """Why the socket is not there right now (deleted, blocked by another file), or None."""
        if self._server is None:
            return "not listening"
        return self._watch.problem

    def start(self) -> None:
        """Prepare the socket path, bind and serve in gRPC's threads, then watch the socket file."""
        with self._lock:
            if self._server is not None:
                return
            self._server = self._bind()
        self._watch.start(socket_identity(self.socket_path))
        log.info("DMI server listening on unix:%s", self.socket_path)

    def _bind(self) -> grpc.Server:
        prepare_socket_path(self.socket_path)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._max_workers,
                                                        thread_name_prefix="dmi-server"),
                             options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        pb_grpc.add_DeviceMapperServiceServicer_to_server(self._servicer, server)  # type: ignore[no-untyped-call]
        try:
            server.add_insecure_port(f"unix:{self.socket_path}")
        except RuntimeError as exc:
            raise OSError(f"cannot bind DMI socket {self.socket_path}: {exc}") from exc
        server.start()
        return server

    def _bind_again(self) -> SocketIdentity | None:
        """The old listener is unreachable: drop it and bind a new one (OSError: try again later)."""
        with self._lock:
            old, self._server = self._server, None
            if old is not None:
                old.stop(0).wait()
            self._server = self._bind()
            return socket_identity(self.socket_path)

    def stop(self, grace: float = 1.0) -> None:
        """Stop watching and serving (letting calls finish for `grace` seconds); remove the socket file if ours."""
        self._watch.stop()
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return
        ours = self._watch.identity is not None and socket_identity(self.socket_path) == self._watch.identity
        server.stop(grace).wait()
        try:
            if ours and stat.S_ISSOCK(os.lstat(self.socket_path).st_mode):
                os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
