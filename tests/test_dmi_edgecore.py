"""EdgeCoreClient against a fake EdgeCore that enforces EdgeCore's DMI rules, over real unix sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from common import short_dir
from dmi_support import pb_device, pb_model
from fake_edgecore import FakeEdgeCore, max_rate

from mapper.devices.model import Device, DeviceModel, TwinValue
from mapper.dmi.edgecore import EdgeCoreClient, MapperIdentity

TWINS = [
    TwinValue("gpu_usage", reported="12.5", observed_desired=""),
    TwinValue("fan_speed", reported="40", observed_desired="40"),
]


@dataclass
class Registrations:
    """What on_registered received, call by call."""

    calls: list[tuple[list[DeviceModel], list[Device], list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, models: list[DeviceModel], devices: list[Device], errors: list[str]) -> None:
        with self.lock:
            self.calls.append((models, devices, errors))

    def count(self) -> int:
        """How many registrations were delivered."""
        with self.lock:
            return len(self.calls)


@dataclass
class Setup:
    """A fake EdgeCore (not started) and a client pointed at it."""

    directory: Path
    fake: FakeEdgeCore
    client: EdgeCoreClient
    registrations: Registrations
    observed: list[tuple[str, str]]


def make_setup(directory: Path, supports_states: bool = True, **client_args: float) -> Setup:
    """Fake and client in `directory`; short backoff so tests stay quick."""
    fake = FakeEdgeCore(str(directory / "dmi.sock"), supports_states=supports_states)
    identity = MapperIdentity(
        name="jetson-mapper",
        version="v1.0",
        api_version="v1.0",
        protocol="jetson",
        address=str(directory / "jetson.sock"),
    )
    registrations = Registrations()
    observed: list[tuple[str, str]] = []
    args = {"backoff_initial": 0.05, "backoff_max": 0.2, "max_rate": 20.0, "burst": 20, **client_args}
    client = EdgeCoreClient(
        fake.socket_path,
        identity,
        registrations,
        on_call=lambda method, code: observed.append((method, code)),
        **args,
    )  # type: ignore[arg-type]
    return Setup(directory, fake, client, registrations, observed)


@pytest.fixture
def setup() -> Iterator[Setup]:
    """A started fake EdgeCore holding one Jetson device and one device of another protocol."""
    with short_dir() as directory:
        state = make_setup(directory)
        state.fake.set_devices(
            [(pb_model(), pb_device()), (pb_model("other"), pb_device("plc", protocol="modbus"))]
        )
        state.fake.start()
        try:
            yield state
        finally:
            state.client.stop()
            state.fake.stop()


def test_register_hands_over_devices(setup: Setup) -> None:
    """MapperRegister(withData=true, address=path bytes) delivers this protocol's devices to on_registered."""
    setup.client.start()
    assert setup.fake.wait_for(lambda: setup.registrations.count() == 1)
    assert setup.client.registered
    request = setup.fake.calls_of("MapperRegister")[0].request
    assert request.withData and request.mapper.protocol == "jetson"
    assert request.mapper.address == str(setup.directory / "jetson.sock").encode()
    models, devices, errors = setup.registrations.calls[0]
    assert [m.name for m in models] == ["jetson-model"] and errors == []
    assert [d.name for d in devices] == ["xavier"] and devices[0].protocol_config == {"interval": 1.0}


def test_report_status_reaches_edgecore(setup: Setup) -> None:
    """Twins arrive in one request with both fields set, and pass the fake's EdgeCore checks."""
    setup.client.start()
    assert setup.fake.wait_for(lambda: setup.client.registered)
    assert setup.client.report_status("default", "xavier", TWINS, report_to_cloud=True, report_cycle_ms=5000)
    (call,) = setup.fake.calls_of("ReportDeviceStatus")
    assert call.request.reportedDevice.reportToCloud and call.request.reportedDevice.reportCycle == 5000
    stored = setup.fake.twins[("default", "xavier")]
    assert stored["fan_speed"].observedDesired.value == "40" and stored["gpu_usage"].reported.value == "12.5"
    assert ("ReportDeviceStatus", "OK") in setup.observed


@pytest.mark.parametrize(
    "twins",
    [
        [],
        [TwinValue("gpu_usage", "12 %", "")],
        [TwinValue("gpu_usage", "1e+20", "")],
        [TwinValue("gpu_usage", '{"a":1}', "")],
        [TwinValue("bad name", "1", "")],
        [TwinValue("gpu_usage", "x" * 513, "")],
    ],
)
def test_invalid_twins_are_refused_before_the_wire(setup: Setup, twins: list[TwinValue]) -> None:
    """Empty lists and values outside EdgeCore's charset raise ValueError; nothing is sent."""
    setup.client.start()
    assert setup.fake.wait_for(lambda: setup.client.registered)
    with pytest.raises(ValueError):
        setup.client.report_status("default", "xavier", twins, report_to_cloud=False, report_cycle_ms=0)
    assert setup.fake.calls_of("ReportDeviceStatus", code=None) == []


def test_report_state_and_bad_words(setup: Setup) -> None:
    """A known state word is sent; an unknown one is refused locally."""
    setup.client.start()
    assert setup.fake.wait_for(lambda: setup.client.registered)
    assert setup.client.report_state("default", "xavier", "online")
    assert setup.fake.states[("default", "xavier")] == "online"
    with pytest.raises(ValueError):
        setup.client.report_state("default", "xavier", "ONLINE!")


def test_reports_before_registration_return_false() -> None:
    """Without EdgeCore nothing blocks: reports return False at once and are counted."""
    with short_dir() as directory:
        state = make_setup(directory)
        state.client.start()
        try:
            assert not state.client.report_status("default", "xavier", TWINS, True, 0)
            assert not state.client.report_state("default", "xavier", "ok")
            assert ("ReportDeviceStatus", "SKIPPED_UNREGISTERED") in state.observed
        finally:
            state.client.stop()


def test_registers_once_edgecore_appears_after_backoff() -> None:
    """While the socket is absent the client retries with backoff; it registers once EdgeCore starts."""
    with short_dir() as directory:
        state = make_setup(directory)
        state.client.start()
        try:
            time.sleep(0.5)
            assert not state.client.registered
            state.fake.set_devices([(pb_model(), pb_device())])
            state.fake.start()
            assert state.fake.wait_for(lambda: state.registrations.count() == 1)
            assert state.client.report_status("default", "xavier", TWINS, True, 0)
        finally:
            state.client.stop()
            state.fake.stop()


def test_reregisters_after_edgecore_restart_without_traffic(setup: Setup) -> None:
    """A restarted EdgeCore (new socket file, mappers forgotten) is noticed from the socket file alone."""
    setup.client.start()
    assert setup.fake.wait_for(lambda: setup.registrations.count() == 1)
    setup.fake.restart()
    assert setup.fake.mappers == {}
    assert setup.fake.wait_for(lambda: setup.registrations.count() == 2, timeout=30)
    assert "jetson" in setup.fake.mappers
    assert setup.fake.calls_of("ReportDeviceStatus", code=None) == []
    assert setup.client.report_status("default", "xavier", TWINS, True, 0)


def test_unavailable_marks_unregistered_and_recovers(setup: Setup) -> None:
    """A report to a vanished EdgeCore returns False, drops the registration, and registration resumes."""
    setup.client.start()
    assert setup.fake.wait_for(lambda: setup.client.registered)
    setup.fake.fail_next.append(grpc.StatusCode.UNAVAILABLE)
    assert not setup.client.report_status("default", "xavier", TWINS, True, 0)
    assert setup.fake.wait_for(lambda: setup.registrations.count() == 2)
    assert setup.client.report_status("default", "xavier", TWINS, True, 0)


def test_unimplemented_states_are_tolerated() -> None:
    """An EdgeCore without ReportDeviceStates answers UNIMPLEMENTED once; the client stops sending states."""
    with short_dir() as directory:
        state = make_setup(directory, supports_states=False)
        state.fake.start()
        state.client.start()
        try:
            assert state.fake.wait_for(lambda: state.client.registered)
            assert not state.client.report_state("default", "xavier", "ok")
            assert not state.client.report_state("default", "xavier", "ok")
            assert len(state.fake.calls_of("ReportDeviceStates", code=None)) == 1
            assert not state.client.states_supported
            assert state.client.registered
            assert state.client.report_status("default", "xavier", TWINS, True, 0)
        finally:
            state.client.stop()
            state.fake.stop()


def test_rate_budget_is_respected() -> None:
    """Hammering reports: EdgeCore sees at most burst + rate x window per window and refuses none."""
    rate, burst, window = 4.0, 3, 1.0
    with short_dir() as directory:
        state = make_setup(directory, max_rate=rate, burst=burst)
        state.fake.start()
        state.client.start()
        try:
            assert state.fake.wait_for(lambda: state.client.registered)
            results = []
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                results.append(state.client.report_status("default", "xavier", TWINS, True, 0))
                time.sleep(0.005)
            times = [c.at for c in state.fake.calls if c.code == grpc.StatusCode.OK]
            assert results.count(True) >= burst
            assert results.count(False) > 0
            assert max_rate(times, window) <= burst + rate * window
            assert all(c.code == grpc.StatusCode.OK for c in state.fake.calls)
            assert ("ReportDeviceStatus", "SKIPPED_RATE_LIMIT") in state.observed
        finally:
            state.client.stop()
            state.fake.stop()


def test_fake_edgecore_limits_like_edgecore() -> None:
    """The fake itself answers over-limit calls with an error (what a greedy mapper would see)."""
    with short_dir() as directory:
        state = make_setup(directory, max_rate=1000.0, burst=1000)
        state.fake = FakeEdgeCore(state.fake.socket_path, rate=1.0, burst=5)
        state.fake.start()
        client = EdgeCoreClient(
            state.fake.socket_path,
            MapperIdentity("m", "1", "1", "jetson", "/x.sock"),
            state.registrations,
            max_rate=1000.0,
            burst=1000,
            backoff_initial=0.05,
        )
        client.start()
        try:
            assert state.fake.wait_for(lambda: client.registered)
            results = [client.report_status("default", "xavier", TWINS, True, 0) for _ in range(10)]
            assert results.count(True) <= 5
            assert state.fake.calls_of("ReportDeviceStatus", code=grpc.StatusCode.UNKNOWN)
        finally:
            client.stop()
            state.fake.stop()


def test_unconvertible_devices_are_reported_not_fatal() -> None:
    """A malformed device in the MapperRegister reply becomes an error string; the good ones still arrive."""
    with short_dir() as directory:
        state = make_setup(directory)
        broken = pb_device("broken")
        broken.spec.deviceModelReference = ""
        state.fake.set_devices([(pb_model(), pb_device()), (pb_model(), broken)])
        state.fake.start()
        state.client.start()
        try:
            assert state.fake.wait_for(lambda: state.registrations.count() == 1)
            models, devices, errors = state.registrations.calls[0]
            assert [d.name for d in devices] == ["xavier"] and len(models) == 1
            assert len(errors) == 1 and "default/broken: spec.deviceModelReference is empty" in errors[0]
        finally:
            state.client.stop()
            state.fake.stop()
