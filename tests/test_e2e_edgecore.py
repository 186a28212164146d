"""The mapper as a subprocess against a fake EdgeCore that enforces EdgeCore's DMI rules."""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fake_edgecore import FakeEdgeCore, max_rate
from mapper_process import DEVICE_MODEL, Emulator, Mapper, wait_until

from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.manifests import load_manifests

pytestmark = pytest.mark.jtop

TRANSCRIPT = os.environ.get("JM_TRANSCRIPT")


def jetson_pair() -> tuple[pb.DeviceModel, pb.Device]:
    """The bundled DeviceModel and Device, converted the way EdgeCore converts them, with 1 s cycles."""
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / "jetson-xavier.yaml"])
    device = devices[0]
    for prop in device.spec.properties:
        prop.reportCycle = 1000
        prop.collectCycle = 1000
        prop.ClearField("pushMethod")
    return models[0], device


def renamed(device: pb.Device, name: str) -> pb.Device:
    """A copy of a Device under another name."""
    other = copy.deepcopy(device)
    other.name = name
    return other


@pytest.fixture
def emulator(workdir: str) -> Iterator[Emulator]:
    """The jtop.service emulator (Xavier NX, JetPack 5)."""
    emu = Emulator(workdir, interval=0.5).start()
    yield emu
    emu.stop()


def edgecore_config(workdir: str, emulator: Emulator) -> dict[str, object]:
    """A mapper config pointing at the fake EdgeCore in workdir."""
    return {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "common": {"edgecore_sock": os.path.join(workdir, "dmi.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": 0.5},
    }


@pytest.fixture
def fake(workdir: str) -> Iterator[FakeEdgeCore]:
    """A fake EdgeCore that hands out the bundled jetson device at registration."""
    edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
    edgecore.set_devices([jetson_pair()])
    edgecore.start()
    yield edgecore
    edgecore.stop()


@pytest.fixture
def mapper(workdir: str, emulator: Emulator) -> Iterator[Mapper]:
    """The mapper, not yet started."""
    process = Mapper(workdir, edgecore_config(workdir, emulator))
    yield process
    process.stop()


def reports_for(fake: FakeEdgeCore, name: str) -> list[pb.ReportDeviceStatusRequest]:
    """Accepted ReportDeviceStatus requests of one device."""
    return [c.request for c in fake.calls_of("ReportDeviceStatus") if c.request.deviceName == name]


def twins_of(request: pb.ReportDeviceStatusRequest) -> dict[str, pb.Twin]:
    """Twins of a report by property name."""
    return {t.propertyName: t for t in request.reportedDevice.twins}


def note(line: str) -> None:
    """Append a line to the transcript file when JM_TRANSCRIPT is set."""
    if TRANSCRIPT:
        with open(TRANSCRIPT, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def test_full_lifecycle_with_edgecore(fake: FakeEdgeCore, mapper: Mapper, workdir: str) -> None:
    """Register, report, register/update/remove devices, survive an EdgeCore restart, within the budget."""
    _model, device = jetson_pair()
    mapper.start()
    wait_until(lambda: fake.calls_of("MapperRegister"))
    register = fake.calls_of("MapperRegister")[0].request
    assert register.withData is True
    assert register.mapper.protocol == "jetson"
    assert register.mapper.address == os.path.join(workdir, "jetson.sock").encode()
    note(f"MapperRegister withData={register.withData} protocol={register.mapper.protocol} "
         f"address={register.mapper.address.decode()} -> 1 device, 1 model")

    wait_until(lambda: len(reports_for(fake, "jetson-xavier")) >= 3, timeout=30)
    expected = {p.name for p in device.spec.properties if p.reportToCloud}
    for request in reports_for(fake, "jetson-xavier")[:3]:
        twins = twins_of(request)
        assert set(twins) <= expected and len(twins) >= len(expected) - 2, set(twins) ^ expected
        for twin in twins.values():
            assert twin.HasField("reported") and twin.HasField("observedDesired")
        assert twins["nvpmodel"].observedDesired.value == "MODE_20W_6CORE"
        assert twins["nvpmodel"].reported.value == "MODE_20W_6CORE"
        assert 0.0 <= float(twins["gpu_usage"].reported.value) <= 100.0
        assert int(twins["ram_total"].reported.value) > 8 * 1024**3  # the emulated Xavier NX has 16 GB
        note("ReportDeviceStatus jetson-xavier: " + " ".join(
            f"{n}={t.reported.value}" + (f"(desired {t.observedDesired.value})" if t.observedDesired.value else "")
            for n, t in sorted(twins.items())))

    second = renamed(device, "jetson-xavier-2")
    assert fake.register_device(second).deviceName == "jetson-xavier-2"
    note("RegisterDevice jetson-xavier-2 -> OK")
    wait_until(lambda: reports_for(fake, "jetson-xavier-2"), timeout=30)

    updated = copy.deepcopy(device)
    kept = [p for p in updated.spec.properties if p.name != "uptime"]
    del updated.spec.properties[:]
    updated.spec.properties.extend(kept)
    fake.update_device(updated)
    note("UpdateDevice jetson-xavier (property uptime dropped) -> OK")
    seen = len(reports_for(fake, "jetson-xavier"))
    wait_until(lambda: len(reports_for(fake, "jetson-xavier")) >= seen + 2, timeout=30)
    assert "uptime" not in twins_of(reports_for(fake, "jetson-xavier")[-1])

    got = fake.get_device("default", "jetson-xavier").device
    assert got.name == "jetson-xavier" and {t.propertyName for t in got.status.twins} >= {"gpu_usage", "nvpmodel"}

    fake.remove_device("default", "jetson-xavier-2")
    note("RemoveDevice jetson-xavier-2 -> OK")
    removed_at = len(reports_for(fake, "jetson-xavier-2"))
    seen = len(reports_for(fake, "jetson-xavier"))
    wait_until(lambda: len(reports_for(fake, "jetson-xavier")) >= seen + 2, timeout=30)
    assert len(reports_for(fake, "jetson-xavier-2")) <= removed_at + 1  # one may have been in flight

    fake.restart()
    note("EdgeCore restarted (socket recreated, mappers forgotten)")
    wait_until(lambda: len(fake.calls_of("MapperRegister")) >= 2, timeout=30)
    note("MapperRegister again -> 1 device, 1 model")
    seen = len(reports_for(fake, "jetson-xavier"))
    wait_until(lambda: len(reports_for(fake, "jetson-xavier")) >= seen + 2, timeout=30)

    refused = [c for c in fake.calls if c.code != grpc.StatusCode.OK]
    assert not refused, refused
    times = [c.at for c in fake.calls]
    span = max(times) - min(times)
    rate = len(times) / span
    note(f"DMI requests: {len(times)} in {span:.1f} s = {rate:.2f}/s; busiest 10 s window: "
         f"{max_rate(times, 10.0)} requests")
    # The mapper's own token bucket (0.5/s, burst 5) bounds every window; EdgeCore allows 1/s, burst 100.
    assert len(times) <= 0.5 * span + 5 + 1
    assert rate < 1.0
    assert max_rate(times, 10.0) <= 0.5 * 10 + 5 + 1


def test_edgecore_absent_at_start(workdir: str, mapper: Mapper) -> None:
    """Without EdgeCore the mapper serves metrics, is not ready, and registers once EdgeCore appears."""
    mapper.start()
    status, body = mapper.get("/readyz")
    assert status == 503 and "EdgeCore" in body
    wait_until(lambda: "jetson_mapper_source_up" in mapper.get("/metrics")[1])
    edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
    edgecore.set_devices([jetson_pair()])
    edgecore.start()
    try:
        wait_until(lambda: edgecore.calls_of("MapperRegister"), timeout=40)
        wait_until(lambda: mapper.get("/readyz")[0] == 200, timeout=20)
        wait_until(lambda: reports_for(edgecore, "jetson-xavier"), timeout=30)
    finally:
        edgecore.stop()
    mapper.alive_or_fail()


def test_malformed_device_specs_are_refused_and_old_device_kept(fake: FakeEdgeCore, mapper: Mapper) -> None:
    """Bad specs answer INVALID_ARGUMENT with a reason; a bad update leaves the running device as it was."""
    _model, device = jetson_pair()
    mapper.start()
    wait_until(lambda: reports_for(fake, "jetson-xavier"), timeout=30)

    unknown_model = renamed(device, "orphan")
    unknown_model.spec.deviceModelReference = "no-such-model"
    extra_property = renamed(device, "extra")
    extra_property.spec.properties.add(name="not_in_model")
    bad_reading = copy.deepcopy(device)
    bad_reading.spec.properties[0].visitors.configData.data["reading"].Pack(_string("no spaces allowed"))
    cases = [
        (fake.register_device, unknown_model, "no-such-model"),
        (fake.register_device, extra_property, "not_in_model"),
        (fake.update_device, bad_reading, "reading"),
    ]
    for call, spec, word in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call(spec)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert word in caught.value.details()

    got = fake.get_device("default", "jetson-xavier").device
    assert [p.name for p in got.spec.properties] == [p.name for p in device.spec.properties]
    with pytest.raises(grpc.RpcError) as caught:
        fake.get_device("default", "orphan")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    seen = len(reports_for(fake, "jetson-xavier"))
    wait_until(lambda: len(reports_for(fake, "jetson-xavier")) > seen, timeout=30)
    mapper.alive_or_fail()


def _string(text: str) -> object:
    from google.protobuf import wrappers_pb2

    return wrappers_pb2.StringValue(value=text)


@pytest.mark.parametrize("supports_states", [True, False], ids=["edgecore-1.18+", "edgecore-without-states"])
def test_state_reports_and_old_edgecore(workdir: str, emulator: Emulator, supports_states: bool) -> None:
    """States go online, then offline when jtop disappears; UNIMPLEMENTED from old EdgeCore is tolerated."""
    model, device = jetson_pair()
    device.status.reportToCloud = True
    device.status.reportCycle = 1000
    edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"), supports_states=supports_states)
    edgecore.set_devices([(model, device)])
    edgecore.start()
    process = Mapper(workdir, edgecore_config(workdir, emulator)).start()

    def state() -> str | None:
        return edgecore.states.get(("default", "jetson-xavier"))

    try:
        if supports_states:
            wait_until(lambda: state() == "online", timeout=30)
            emulator.stop()
            wait_until(lambda: state() == "offline", timeout=60)
            emulator.start()
            wait_until(lambda: state() == "online", timeout=60)
        else:
            wait_until(lambda: edgecore.calls_of("ReportDeviceStates", grpc.StatusCode.UNIMPLEMENTED))
            seen = len(reports_for(edgecore, "jetson-xavier"))
            wait_until(lambda: len(reports_for(edgecore, "jetson-xavier")) >= seen + 2, timeout=30)
            assert len(edgecore.calls_of("ReportDeviceStates", None)) == 1
        process.alive_or_fail()
    finally:
        process.stop()
        edgecore.stop()


def test_many_devices_stay_under_the_budget(fake: FakeEdgeCore, mapper: Mapper) -> None:
    """Four devices with 1 s report cycles: all DMI traffic together stays at the configured 0.5/s."""
    model, device = jetson_pair()
    fake.set_devices([(model, renamed(device, f"jetson-{i}")) for i in range(4)])
    mapper.start()
    wait_until(lambda: all(reports_for(fake, f"jetson-{i}") for i in range(4)), timeout=40)
    start = len(fake.calls)
    wait_until(lambda: len(fake.calls) >= start + 12, timeout=60)
    window = fake.calls[start:]
    span = window[-1].at - window[0].at
    assert len(window) - 1 <= 0.5 * span + 5, (len(window), span)
    assert all(c.code == grpc.StatusCode.OK for c in fake.calls)
    # The pacing alone keeps under the budget: the client's token bucket never had to hold a report back.
    errors = [line for line in mapper.get("/metrics")[1].splitlines()
              if line.startswith("jetson_mapper_sink_errors_total") and 'sink="dmi"' in line]
    assert errors and errors[0].endswith(" 0.0"), errors


def test_stale_socket_file_is_replaced(workdir: str, fake: FakeEdgeCore, mapper: Mapper) -> None:
    """A socket file left by a crashed mapper does not stop the next one."""
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(os.path.join(workdir, "jetson.sock"))
    stale.close()
    assert Path(workdir, "jetson.sock").exists()
    mapper.start()
    wait_until(lambda: reports_for(fake, "jetson-xavier"), timeout=30)
    assert fake.get_device("default", "jetson-xavier").device.name == "jetson-xavier"


def test_regular_file_at_socket_path_is_a_clear_error(workdir: str, emulator: Emulator) -> None:
    """A non-socket file where the mapper socket goes is never deleted; the mapper says why it cannot start."""
    Path(workdir, "jetson.sock").write_text("precious")
    process = Mapper(workdir, edgecore_config(workdir, emulator)).start(wait=False)
    assert process.process is not None
    assert process.process.wait(timeout=30) == 2
    assert "jetson.sock" in process.log() and "Traceback" not in process.log()
    assert Path(workdir, "jetson.sock").read_text() == "precious"


def test_bad_config_lists_every_problem(workdir: str) -> None:
    """A bad config exits 2 with every problem in one message, never a traceback."""
    config = Path(workdir, "bad.yaml")
    config.write_text(
        "grpc_server: {socket_path: relative.sock}\n"
        "common: {http_port: 99999, protocol: ''}\n"
        "source: {interval: fast}\n"
        "dmi: {max_request_rate: 5}\n"
        "mqtt: {queue_size: -1}\n"
        "surprise: 1\n"
    )
    result = subprocess.run([sys.executable, "-m", "mapper", "run", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    for key in ("grpc_server.socket_path", "common.http_port", "common.protocol", "source.interval",
                "dmi.max_request_rate", "mqtt.queue_size", "surprise"):
        assert key in result.stderr, key
    assert "Traceback" not in result.stderr


def test_registration_runs_a_device_whose_desired_value_is_invalid(workdir: str, mapper: Mapper) -> None:
    """EdgeCore caches a refused spec and hands it over at registration: readings still run, the value is not set."""
    model, device = jetson_pair()
    bad = copy.deepcopy(device)
    for prop in bad.spec.properties:
        if prop.name == "nvpmodel":
            prop.desired.value = "MODE_9000W"
    edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
    edgecore.set_devices([(model, device)])
    edgecore.start()
    try:
        mapper.start()
        wait_until(lambda: reports_for(edgecore, "jetson-xavier"), timeout=30)
        edgecore.set_devices([(model, bad)])
        edgecore.restart()  # re-registration hands over the cached, refused spec while samples flow
        wait_until(lambda: len(edgecore.calls_of("MapperRegister")) >= 2, timeout=30)
        seen = len(reports_for(edgecore, "jetson-xavier"))
        wait_until(lambda: len(reports_for(edgecore, "jetson-xavier")) > seen, timeout=30)
        twins = twins_of(reports_for(edgecore, "jetson-xavier")[-1])
        assert twins["nvpmodel"].reported.value == "MODE_20W_6CORE"  # the board was not touched
        assert "desired value not applied" in mapper.log() and "MODE_9000W" in mapper.log()
    finally:
        edgecore.stop()
