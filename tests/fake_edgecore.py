"""A fake KubeEdge EdgeCore for tests: DeviceManagerService on a unix socket that enforces EdgeCore's rules.

It mirrors edge/pkg/devicetwin/dmiserver (v1.23.1): one token bucket (1/s, burst 100) for all DMI calls,
errors for an empty protocol or empty twins, twin keys/values checked like dttype.UnmarshalDeviceTwinUpdate,
state words outside the five known ones silently dropped, devices only handed out with withData=true.
Towards the mapper it calls like dmiclient: a fresh channel per call to the registered address, 10 s
deadline, no retry.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.generated import api_pb2_grpc as pb_grpc

TWIN_KEY = re.compile(r"^[a-zA-Z0-9-_.,:/@#]{1,128}$")
TWIN_VALUE = re.compile(r"^[a-zA-Z0-9-_.,:/@#]{1,512}$")
STATE_WORDS = ("online", "offline", "ok", "unknown", "unhealthy")
MAPPER_CALL_DEADLINE = 10.0


@dataclass(frozen=True)
class Call:
    """One call received by the fake: when, which RPC, the request, and the answer's status code."""

    at: float
    method: str
    request: Any
    code: grpc.StatusCode


class _Limiter:
    """golang.org/x/time/rate.Limiter(Every(1s), 100) semantics: starts full, refills continuously."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """Take one token if there is one."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


class _Refuse(Exception):
    """Answer the current call with an error."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class FakeEdgeCore(pb_grpc.DeviceManagerServiceServicer):
    """The EdgeCore side of DMI, in-process."""

    def __init__(self, socket_path: str, rate: float = 1.0, burst: int = 100,
                 supports_states: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self.socket_path = socket_path
        self.supports_states = supports_states
        self._rate, self._burst, self._clock = rate, burst, clock
        self._limiter = _Limiter(rate, burst, clock)
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.calls: list[Call] = []
        self.mappers: dict[str, pb.MapperInfo] = {}
        self.handout: list[tuple[pb.DeviceModel, pb.Device]] = []
        self.twins: dict[tuple[str, str], dict[str, pb.Twin]] = {}
        self.states: dict[tuple[str, str], str] = {}
        self.fail_next: list[grpc.StatusCode] = []

    # lifecycle
    def start(self) -> FakeEdgeCore:
        """Bind the socket and serve."""
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_DeviceManagerServiceServicer_to_server(self, server)
        server.add_insecure_port(f"unix:{self.socket_path}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and remove the socket, like a stopped EdgeCore."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(0).wait()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def restart(self) -> None:
        """Stop, forget registered mappers (EdgeCore < 1.23) and start on a fresh socket file."""
        self.stop()
        with self._lock:
            self.mappers.clear()
            self._limiter = _Limiter(self._rate, self._burst, self._clock)
        self.start()

    # test helpers
    def set_devices(self, pairs: list[tuple[pb.DeviceModel, pb.Device]]) -> None:
        """Devices (each with its model) handed out by MapperRegister to the matching protocol."""
        with self._lock:
            self.handout = list(pairs)

    def calls_of(self, method: str, code: grpc.StatusCode | None = grpc.StatusCode.OK) -> list[Call]:
        """Recorded calls of one RPC, by default only the accepted ones."""
        with self._lock:
            return [c for c in self.calls if c.method == method and (code is None or c.code == code)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Poll `predicate` until it holds or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    # DeviceManagerService
    def _serve(self, method: str, request: Any, context: grpc.ServicerContext,
               handle: Callable[[], Any], empty: Any) -> Any:
        """Apply the limiter and the handler; record the call with its outcome."""
        code, details, result = grpc.StatusCode.OK, "", empty
        try:
            with self._lock:
                injected = self.fail_next.pop(0) if self.fail_next else None
            if injected is not None:
                raise _Refuse(injected, "injected failure")
            if not self._limiter.allow():
                raise _Refuse(grpc.StatusCode.UNKNOWN, f"fail to {method} because of too many request")
            result = handle()
        except _Refuse as refuse:
            code, details = refuse.code, refuse.details
        with self._lock:
            self.calls.append(Call(self._clock(), method, request, code))
        if code != grpc.StatusCode.OK:
            context.set_code(code)
            context.set_details(details)
            return empty
        return result

    def MapperRegister(self, request: pb.MapperRegisterRequest, context: grpc.ServicerContext) -> Any:
        """Remember the mapper; with withData hand out its protocol's devices."""
        def handle() -> pb.MapperRegisterResponse:
            if not request.mapper.protocol:
                raise _Refuse(grpc.StatusCode.UNKNOWN, "fail to register mapper because the protocol is nil")
            with self._lock:
                self.mappers[request.mapper.protocol] = request.mapper
                protocol = request.mapper.protocol
                pairs = [p for p in self.handout if p[1].spec.protocol.protocolName == protocol]
            if not request.withData:
                return pb.MapperRegisterResponse()
            return pb.MapperRegisterResponse(modelList=[m for m, _ in pairs],
                                             deviceList=[d for _, d in pairs])
        return self._serve("MapperRegister", request, context, handle, pb.MapperRegisterResponse())

    def ReportDeviceStatus(self, request: pb.ReportDeviceStatusRequest, context: grpc.ServicerContext) -> Any:
        """Store twins after checking them like EdgeCore's devicetwin module."""
        def handle() -> pb.ReportDeviceStatusResponse:
            if not request.HasField("reportedDevice") or not request.reportedDevice.twins:
                raise _Refuse(grpc.StatusCode.UNKNOWN, "ReportDeviceStatusRequest does not have twin data")
            for twin in request.reportedDevice.twins:
                _check_twin(twin)
            with self._lock:
                stored = self.twins.setdefault((request.deviceNamespace, request.deviceName), {})
                for twin in request.reportedDevice.twins:
                    stored[twin.propertyName] = twin
            return pb.ReportDeviceStatusResponse()
        return self._serve("ReportDeviceStatus", request, context, handle, pb.ReportDeviceStatusResponse())

    def ReportDeviceStates(self, request: pb.ReportDeviceStatesRequest, context: grpc.ServicerContext) -> Any:
        """Store a state word; unknown words are dropped without error; UNIMPLEMENTED when disabled."""
        if not self.supports_states:
            with self._lock:
                self.calls.append(Call(self._clock(), "ReportDeviceStates", request,
                                       grpc.StatusCode.UNIMPLEMENTED))
            context.set_code(grpc.StatusCode.UNIMPLEMENTED)
            context.set_details("unknown method ReportDeviceStates")
            return pb.ReportDeviceStatesResponse()

        def handle() -> pb.ReportDeviceStatesResponse:
            if not request.state or not request.deviceName:
                raise _Refuse(grpc.StatusCode.UNKNOWN, "ReportDeviceStatesRequest is invalid data")
            if request.state.lower() in STATE_WORDS:
                with self._lock:
                    self.states[(request.deviceNamespace, request.deviceName)] = request.state.lower()
            return pb.ReportDeviceStatesResponse()
        return self._serve("ReportDeviceStates", request, context, handle, pb.ReportDeviceStatesResponse())

    # EdgeCore -> mapper (DeviceMapperService), like dmiclient
    def _mapper_call(self, protocol: str | None, method: str, request: Any) -> Any:
        """Dial the registered mapper fresh, call once with a 10 s deadline, close."""
        with self._lock:
            if protocol is None and len(self.mappers) == 1:
                protocol = next(iter(self.mappers))
            mapper = self.mappers.get(protocol or "")
        if mapper is None:
            raise LookupError(f"fail to get dmi client of protocol {protocol}")
        with grpc.insecure_channel(f"unix:{mapper.address.decode()}") as channel:
            stub = pb_grpc.DeviceMapperServiceStub(channel)
            return getattr(stub, method)(request, timeout=MAPPER_CALL_DEADLINE)

    def create_model(self, model: pb.DeviceModel, protocol: str | None = None) -> Any:
        """CreateDeviceModel on the mapper."""
        return self._mapper_call(protocol, "CreateDeviceModel", pb.CreateDeviceModelRequest(model=model))

    def update_model(self, model: pb.DeviceModel, protocol: str | None = None) -> Any:
        """UpdateDeviceModel on the mapper."""
        return self._mapper_call(protocol, "UpdateDeviceModel", pb.UpdateDeviceModelRequest(model=model))

    def register_device(self, device: pb.Device) -> Any:
        """RegisterDevice on the mapper of the device's protocol."""
        return self._mapper_call(device.spec.protocol.protocolName, "RegisterDevice",
                                 pb.RegisterDeviceRequest(device=device))

    def update_device(self, device: pb.Device) -> Any:
        """UpdateDevice on the mapper of the device's protocol."""
        return self._mapper_call(device.spec.protocol.protocolName, "UpdateDevice",
                                 pb.UpdateDeviceRequest(device=device))

    def remove_device(self, namespace: str, name: str, protocol: str | None = None) -> Any:
        """RemoveDevice on the mapper."""
        return self._mapper_call(protocol, "RemoveDevice",
                                 pb.RemoveDeviceRequest(deviceName=name, deviceNamespace=namespace))

    def remove_model(self, namespace: str, name: str, protocol: str | None = None) -> Any:
        """RemoveDeviceModel on the mapper."""
        return self._mapper_call(protocol, "RemoveDeviceModel",
                                 pb.RemoveDeviceModelRequest(modelName=name, modelNamespace=namespace))

    def get_device(self, namespace: str, name: str, protocol: str | None = None) -> Any:
        """GetDevice on the mapper (real EdgeCore never calls it)."""
        return self._mapper_call(protocol, "GetDevice",
                                 pb.GetDeviceRequest(deviceName=name, deviceNamespace=namespace))


def _check_twin(twin: pb.Twin) -> None:
    """EdgeCore's checks on one twin: both fields present, key and non-empty values in the charset."""
    if not twin.HasField("reported") or not twin.HasField("observedDesired"):
        raise _Refuse(grpc.StatusCode.UNKNOWN,
                      f"twin {twin.propertyName}: reported and observedDesired are required")
    if not TWIN_KEY.match(twin.propertyName):
        raise _Refuse(grpc.StatusCode.UNKNOWN, f"twin key {twin.propertyName!r} is invalid")
    for value in (twin.reported.value, twin.observedDesired.value):
        if value and not TWIN_VALUE.match(value):
            raise _Refuse(grpc.StatusCode.UNKNOWN, f"twin value {value!r} is invalid")


def max_rate(times: list[float], window: float) -> int:
    """The largest number of calls seen in any window of `window` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] < t - window:
            start += 1
        best = max(best, end - start + 1)
    return best
