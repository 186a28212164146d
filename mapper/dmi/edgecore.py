"""Client of EdgeCore's DeviceManagerService: register the mapper, report twins and device states."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from mapper.devices.limits import TWIN_NAME_PATTERN
from mapper.devices.model import Device, DeviceModel, TwinValue
from mapper.dmi import convert
from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.generated import api_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

# EdgeCore's checks (dttype.UnmarshalDeviceTwinUpdate): empty values pass, others must match.
TWIN_KEY_PATTERN = TWIN_NAME_PATTERN  # Devices with other names are refused when they arrive (devices/limits.py)
TWIN_VALUE_PATTERN = re.compile(r"^[a-zA-Z0-9-_.,:/@#]{1,512}$")
DEVICE_STATES = ("online", "offline", "ok", "unknown", "unhealthy")
SOCKET_POLL_SECONDS = 2.0
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
]

RegisteredCallback = Callable[[list[DeviceModel], list[Device], list[str]], None]
CallObserver = Callable[[str, str], None]
SocketIdentity = tuple[int, int, int]


@dataclass(frozen=True)
class MapperIdentity:
    """What the mapper tells EdgeCore in MapperRegister; `address` is the mapper socket's absolute path."""

    name: str
    version: str
    api_version: str
    protocol: str
    address: str


class TokenBucket:
    """Client-side limiter shared by every DMI call: `rate` tokens per second, at most `burst` saved."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        """Take one token if available."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self._burst), self._tokens + max(0.0, now - self._last) * self._rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


def validate_twins(twins: Sequence[TwinValue]) -> None:
    """Refuse (ValueError) what EdgeCore would refuse: no twins, bad keys, values outside the charset."""
    if not twins:
        raise ValueError("refusing to report an empty twin list (EdgeCore answers it with an error)")
    for twin in twins:
        if not TWIN_KEY_PATTERN.match(twin.property_name):
            raise ValueError(f"twin name {twin.property_name!r} does not match {TWIN_KEY_PATTERN.pattern}")
        for label, value in (("reported", twin.reported), ("observedDesired", twin.observed_desired)):
            if value and not TWIN_VALUE_PATTERN.match(value):
                raise ValueError(f"twin {twin.property_name} {label} value {value!r} does not match "
                                 f"{TWIN_VALUE_PATTERN.pattern}")


def _socket_identity(path: str) -> SocketIdentity | None:
    """(device, inode, ctime) of the socket file, or None when absent."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_ctime_ns)


class EdgeCoreClient:
    """One long-lived channel to EdgeCore; registration and re-registration run in a background thread."""

    def __init__(self, edgecore_socket: str, identity: MapperIdentity, on_registered: RegisteredCallback,
                 max_rate: float = 0.5, burst: int = 5, deadline: float = 5.0,
                 backoff_initial: float = 1.0, backoff_max: float = 30.0,
                 on_call: CallObserver | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._socket = edgecore_socket
        self._identity = identity
        self._on_registered = on_registered
        self._deadline = deadline
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self._on_call = on_call
        self._clock = clock
        self._bucket = TokenBucket(max_rate, burst, clock)
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.DeviceManagerServiceStub | None = None
        self._registered = threading.Event()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._socket_seen: SocketIdentity | None = None
        self._states_supported = True
        self._waiting = False  # the "waiting for EdgeCore" line was logged and the socket is still absent

    @property
    def registered(self) -> bool:
        """Whether the last MapperRegister succeeded and EdgeCore has not gone away since."""
        return self._registered.is_set()

    @property
    def states_supported(self) -> bool:
        """False once EdgeCore answered ReportDeviceStates with UNIMPLEMENTED."""
        return self._states_supported

    def start(self) -> None:
        """Start the background thread that registers (with backoff) and watches EdgeCore's socket."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="dmi-edgecore", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the channel."""
        self._stopping.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=self._deadline + 5.0)
        self._registered.clear()
        self._close_channel()

    def report_status(self, namespace: str, name: str, twins: Sequence[TwinValue],
                      report_to_cloud: bool, report_cycle_ms: int) -> bool:
        """Send all twins of one device; False when not registered, out of budget or refused."""
        validate_twins(twins)
        request = pb.ReportDeviceStatusRequest(
            deviceName=name, deviceNamespace=namespace,
            reportedDevice=pb.DeviceStatus(twins=convert.twins_to_pb(twins), reportToCloud=report_to_cloud,
                                           reportCycle=report_cycle_ms),
        )
        return self._report("ReportDeviceStatus", request)

    def report_state(self, namespace: str, name: str, state: str) -> bool:
        """Send a device state word; False when unsupported by EdgeCore, not registered or out of budget."""
        if state not in DEVICE_STATES:
            raise ValueError(f"device state {state!r} is not one of {', '.join(DEVICE_STATES)}")
        if not self._states_supported:
            self._observe("ReportDeviceStates", "SKIPPED_UNIMPLEMENTED")
            return False
        request = pb.ReportDeviceStatesRequest(deviceName=name, deviceNamespace=namespace, state=state)
        return self._report("ReportDeviceStates", request)

    def _report(self, method: str,
                request: pb.ReportDeviceStatusRequest | pb.ReportDeviceStatesRequest) -> bool:
        """Send one report if registered and within budget; translate errors into False."""
        stub = self._stub
        if not self._registered.is_set() or stub is None:
            self._observe(method, "SKIPPED_UNREGISTERED")
            return False
        if not self._bucket.try_take():
            self._observe(method, "SKIPPED_RATE_LIMIT")
            return False
        try:
            getattr(stub, method)(request, timeout=self._deadline)
        except grpc.RpcError as error:
            code = _code_of(error)
            self._observe(method, code.name)
            if code is grpc.StatusCode.UNIMPLEMENTED and method == "ReportDeviceStates":
                log.warning("EdgeCore does not implement ReportDeviceStates (older than 1.18): "
                            "not sending device states any more")
                self._states_supported = False
            elif code is grpc.StatusCode.UNAVAILABLE:
                log.warning("EdgeCore unavailable (%s): registering again", _details_of(error))
                self._mark_unregistered()
            else:
                log.warning("DMI %s refused with %s: %s", method, code.name, _details_of(error))
            return False
        self._observe(method, "OK")
        return True

    def register_again(self) -> None:
        """Send MapperRegister again soon (the mapper socket was bound anew)."""
        log.info("registering with EdgeCore again: the mapper socket %s was bound anew", self._identity.address)
        self._mark_unregistered()

    def _mark_unregistered(self) -> None:
        """Forget the registration and wake the background thread."""
        self._registered.clear()
        self._wake.set()

    def _run(self) -> None:
        """Background loop: register with backoff; once registered, watch the socket file."""
        backoff = self._backoff_initial
        while not self._stopping.is_set():
            if not self._registered.is_set():
                if self._try_register():
                    backoff = self._backoff_initial
                    continue
                self._wait(backoff)
                backoff = min(backoff * 2.0, self._backoff_max)
                continue
            if _socket_identity(self._socket) != self._socket_seen:
                log.warning("EdgeCore socket %s changed or vanished: registering again", self._socket)
                self._registered.clear()
                self._close_channel()
                continue
            self._wait(SOCKET_POLL_SECONDS)

    def _wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early on stop or on a lost registration."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _try_register(self) -> bool:
        """One MapperRegister(withData=true) attempt; on success hand the devices to on_registered."""
        identity = _socket_identity(self._socket)
        if identity is None:
            if not self._waiting:
                log.info("waiting for EdgeCore's DMI socket %s; retrying every %g s to %g s", self._socket,
                         self._backoff_initial, self._backoff_max)
            self._waiting = True
            return False
        self._waiting = False
        if not self._bucket.try_take():
            self._observe("MapperRegister", "SKIPPED_RATE_LIMIT")
            return False
        stub = self._open_stub(fresh=identity != self._socket_seen)
        request = pb.MapperRegisterRequest(withData=True, mapper=pb.MapperInfo(
            name=self._identity.name, version=self._identity.version, api_version=self._identity.api_version,
            protocol=self._identity.protocol, address=self._identity.address.encode(), state="ok",
        ))
        try:
            reply = stub.MapperRegister(request, timeout=self._deadline)
        except grpc.RpcError as error:
            code = _code_of(error)
            self._observe("MapperRegister", code.name)
            log.warning("MapperRegister failed with %s: %s", code.name, _details_of(error))
            self._close_channel()
            return False
        self._observe("MapperRegister", "OK")
        self._socket_seen = identity
        self._registered.set()
        models, devices, errors = convert.register_reply_to_model(reply)
        log.info("registered with EdgeCore as %s: %d device(s)", self._identity.name, len(devices))
        try:
            self._on_registered(models, devices, errors)
        except Exception:
            log.exception("on_registered callback failed")
        return True

    def _open_stub(self, fresh: bool) -> pb_grpc.DeviceManagerServiceStub:
        """The stub on the long-lived channel; a new channel when none or when EdgeCore's socket changed."""
        with self._lock:
            if fresh or self._stub is None:
                if self._channel is not None:
                    self._channel.close()
                self._channel = grpc.insecure_channel(f"unix:{self._socket}", options=_CHANNEL_OPTIONS)
                self._stub = pb_grpc.DeviceManagerServiceStub(self._channel)  # type: ignore[no-untyped-call]
            return self._stub

    def _close_channel(self) -> None:
        """Close the channel (the next registration opens a new one)."""
        with self._lock:
            channel, self._channel, self._stub = self._channel, None, None
        if channel is not None:
            channel.close()

    def _observe(self, method: str, code: str) -> None:
        """Tell the metrics observer about one call outcome."""
        if self._on_call is None:
            return
        try:
            self._on_call(method, code)
        except Exception:
            log.exception("on_call observer failed")


def _code_of(error: grpc.RpcError) -> grpc.StatusCode:
    """The status code of a failed call."""
    code = error.code() if isinstance(error, grpc.Call) else None
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details_of(error: grpc.RpcError) -> str:
    """The status message of a failed call."""
    return str(error.details()) if isinstance(error, grpc.Call) else str(error)
