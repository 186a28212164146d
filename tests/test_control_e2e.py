"""Device control end to end: a fake EdgeCore calls the mapper subprocess, whose real jetson-stats client drives
the jtop.service emulator; an independent jetson-stats client and the emulator's own log show what the board did.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from emulator_support import client as jtop_client
from fake_edgecore import FakeEdgeCore
from mapper_process import DEVICE_MODEL, Emulator, Mapper, wait_until
from prometheus_client.parser import text_string_to_metric_families

from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.manifests import load_manifests
from mapper.emulator.profile import resolve_profile_path
from mapper.source.jtop import client_version

pytestmark = pytest.mark.jtop

INTERVAL = 0.3
NS, NAME = "default", "jetson-xavier"
WRITABLE = ("nvpmodel", "jetson_clocks", "fan_profile", "fan_speed")
# Every line the emulator logs when a setter message reaches it (obeyed or refused), as jtop.service does.
SETTER_LINE = re.compile(r"NVPmodel started|nvpmodel id|different mask|Force set nvpmodel|jetson_clocks (started|"
                         r"stopped|has no)|Fan \"[^\"]*\" (set|does not)|Profile \S+ doesn't exist|Wrong index")
# The mapper's own line for every setter it calls. The jetson-stats client drops a setter equal to its last
# sample before it reaches the service, so only this line proves the mapper did not call one.
SET_LINE = re.compile(r": set \w+ to ")
JTOP4 = client_version().startswith("4.")


# --- helpers ---------------------------------------------------------------------------------------------------

def device_with(**desired: str | None) -> tuple[pb.DeviceModel, pb.Device]:
    """The bundled model and Xavier NX Device with 1 s cycles and these desired values (None removes one)."""
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / "jetson-xavier.yaml"])
    device = devices[0]
    for prop in device.spec.properties:
        prop.reportCycle = prop.collectCycle = 1000
        prop.ClearField("pushMethod")
        if prop.name in desired:
            value = desired[prop.name]
            if value is None:
                prop.ClearField("desired")
            else:
                prop.desired.value = value
    return models[0], device


def setter_lines(emulator: Emulator) -> list[str]:
    """What the emulated jtop.service logged about setter messages it received."""
    text = Path(f"{emulator.socket}.log").read_text(encoding="utf-8", errors="replace")
    return [line for line in text.splitlines() if SETTER_LINE.search(line)]


def metric(mapper: Mapper, family: str, prop: str) -> float | None:
    """One sample of a per-property control metric of the test device, None when absent."""
    status, body = mapper.get("/metrics")
    assert status == 200, body
    for fam in text_string_to_metric_families(body):
        for sample in fam.samples:
            if sample.name == family and sample.labels.get("property") == prop and sample.labels["device"] == NAME:
                return float(sample.value)
    return None


def dmi_calls(mapper: Mapper, method: str, code: str) -> float:
    """jetson_mapper_dmi_requests_total for one method and answer code (0 when absent)."""
    for fam in text_string_to_metric_families(mapper.get("/metrics")[1]):
        for sample in fam.samples:
            if sample.name == "jetson_mapper_dmi_requests_total" and sample.labels.get("method") == method \
                    and sample.labels.get("code") == code:
                return float(sample.value)
    return 0.0


def converged(mapper: Mapper, *props: str) -> bool:
    """jetson_property_converged is 1 for every named property."""
    return all(metric(mapper, "jetson_property_converged", p) == 1.0 for p in props)


def twins(fake: FakeEdgeCore) -> dict[str, tuple[str, str]]:
    """(reported, observedDesired) per property, from the latest twins the mapper reported."""
    with fake._lock:
        stored = dict(fake.twins.get((NS, NAME), {}))
    return {name: (t.reported.value, t.observedDesired.value) for name, t in stored.items()}


def board(jetson: Any) -> dict[str, Any]:
    """The board as an independent jetson-stats client sees it."""
    fan = next(iter(jetson.fan.keys()))
    return {"nvpmodel": str(jetson.nvpmodel.name), "jetson_clocks": bool(jetson.jetson_clocks),
            "fan_profile": jetson.fan.get_profile(fan), "fan_speed": float(jetson.fan.get_speed(fan))}


def settles(jetson: Any, **expected: Any) -> dict[str, Any]:
    """Wait until the board shows the expected values (fan speed within 2 %); return what it shows."""
    def ok() -> dict[str, Any] | None:
        now = board(jetson)
        same = [abs(now[k] - v) <= 2.0 if k == "fan_speed" else now[k] == v for k, v in expected.items()]
        return now if all(same) else None
    return dict(wait_until(ok, timeout=30))


def log_since(mapper: Mapper, offset: int) -> str:
    """The mapper's log after `offset` characters."""
    return mapper.log()[offset:]


# --- fixtures --------------------------------------------------------------------------------------------------

class Rig:
    """Emulator, fake EdgeCore and mapper processes of one test, all stopped at the end."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.emulator: Emulator | None = None
        self.fake = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
        self.mappers: list[Mapper] = []

    def start(self, pair: tuple[pb.DeviceModel, pb.Device], profile: str = "xavier-nx-jp5") -> Rig:
        """Start the emulator and the fake EdgeCore that hands `pair` out."""
        self.emulator = Emulator(self.workdir, profile=profile, interval=INTERVAL).start()
        self.fake.set_devices([pair])
        self.fake.start()
        return self

    def mapper(self, control: dict[str, Any] | None = None, http: dict[str, Any] | None = None) -> Mapper:
        """Start a mapper on the emulator, registered with the fake EdgeCore; wait for its first report."""
        assert self.emulator is not None
        seen = len(self.fake.calls_of("ReportDeviceStatus"))
        config = {
            "grpc_server": {"socket_path": os.path.join(self.workdir, "jetson.sock")},
            "common": {"edgecore_sock": os.path.join(self.workdir, "dmi.sock")},
            "source": {"jtop_socket": self.emulator.socket, "interval": INTERVAL},
            "dmi": {"max_request_rate": 0.9, "burst": 10},
            "control": {"confirm_timeout": 1.5, "max_attempts": 2, **(control or {})},
            "http": dict(http or {}),
        }
        process = Mapper(self.workdir, config)
        self.mappers.append(process)
        process.start()
        wait_until(lambda: len(self.fake.calls_of("ReportDeviceStatus")) > seen and process.alive_or_fail(),
                   timeout=30)
        return process

    def reports_after(self, count: int) -> None:
        """Wait for `count` more accepted twin reports."""
        seen = len(self.fake.calls_of("ReportDeviceStatus"))
        wait_until(lambda: len(self.fake.calls_of("ReportDeviceStatus")) >= seen + count, timeout=30)

    def stop(self) -> None:
        """Stop everything this rig started."""
        for process in self.mappers:
            process.stop()
        self.fake.stop()
        if self.emulator is not None:
            self.emulator.stop()


@pytest.fixture
def rig(workdir: str) -> Iterator[Rig]:
    """The processes of one test."""
    processes = Rig(workdir)
    yield processes
    processes.stop()


# --- 1. desired values reach the board -------------------------------------------------------------------------

def test_update_device_moves_the_board_and_the_twins_follow(rig: Rig) -> None:
    """UpdateDevice with new nvpmodel, jetson_clocks, fan_profile and fan_speed: the board follows, twins and
    the converged metric show it."""
    rig.start(device_with())  # bundled desired values: quiet, MODE_20W_6CORE, false = the board's state
    assert rig.emulator is not None
    mapper = rig.mapper()
    wait_until(lambda: converged(mapper, "nvpmodel", "jetson_clocks", "fan_profile"))
    assert setter_lines(rig.emulator) == []  # already there: nothing sent...
    assert not SET_LINE.search(mapper.log())  # ...not even a setter the client would drop as a repeat

    _, wanted = device_with(nvpmodel="MODE_10W_4CORE", jetson_clocks="true", fan_profile="manual", fan_speed="60")
    rig.fake.update_device(wanted)
    with jtop_client(rig.emulator.socket, INTERVAL) as jetson:
        settles(jetson, nvpmodel="MODE_10W_4CORE", jetson_clocks=True, fan_profile="manual", fan_speed=60.0)
        cores_online = sum(1 for core in jetson.cpu["cpu"] if core["online"])
    assert cores_online == 4  # the emulated mode really took effect
    wait_until(lambda: converged(mapper, *WRITABLE))
    rig.reports_after(1)
    seen = twins(rig.fake)
    assert seen["nvpmodel"] == ("MODE_10W_4CORE", "MODE_10W_4CORE")
    assert seen["jetson_clocks"] == ("true", "true")
    assert seen["fan_profile"] == ("manual", "manual")
    assert seen["fan_speed"][1] == "60" and abs(float(seen["fan_speed"][0]) - 60.0) <= 2.0
    assert seen["nvpmodel_id"] == ("4", "")
    lines = "\n".join(setter_lines(rig.emulator))
    for evidence in ("NVPmodel started ID 4", "jetson_clocks started", 'set profile manual', "set speed 60"):
        assert evidence in lines, lines
    assert "converged to MODE_10W_4CORE" in mapper.log()
    assert "Logging error" not in mapper.log()


# --- 2. refusals -----------------------------------------------------------------------------------------------

REFUSED = [
    ({"nvpmodel": "TURBO"}, ["unknown power mode 'TURBO'", "8:MODE_20W_6CORE", "4:MODE_10W_4CORE"]),
    ({"fan_speed": "150", "fan_profile": "manual"}, ["150 is out of range", "0 to 100"]),
    ({"jetson_clocks": "maybe"}, ["'maybe' is not a boolean", "true or false"]),
    ({"fan_profile": "turbo"}, ["unknown fan profile 'turbo'", "quiet, cool, manual"]),
    ({"fan_speed": "60"}, ["fan_speed needs fan_profile 'manual'", "'quiet'"]),
]


def test_refused_values_leave_board_and_device_unchanged(rig: Rig) -> None:
    """Each bad desired value answers INVALID_ARGUMENT saying what is allowed; no setter, old desired kept."""
    rig.start(device_with())
    assert rig.emulator is not None
    mapper = rig.mapper()
    wait_until(lambda: converged(mapper, "nvpmodel", "jetson_clocks", "fan_profile"))
    with jtop_client(rig.emulator.socket, INTERVAL) as jetson:
        before = board(jetson)
        for desired, words in REFUSED:
            _, bad = device_with(**desired)
            with pytest.raises(grpc.RpcError) as caught:
                rig.fake.update_device(bad)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, desired
            for word in words:
                assert word in str(caught.value.details()), (word, str(caught.value.details()))

        # Desired values on ReadOnly properties are accepted and never applied (as mapper-framework does).
        _, read_only = device_with(nvpmodel_id="3", gpu_usage="5")
        rig.fake.update_device(read_only)
        rig.reports_after(2)
        after = board(jetson)
    assert after["nvpmodel"] == before["nvpmodel"] == "MODE_20W_6CORE"
    assert (after["jetson_clocks"], after["fan_profile"]) == (before["jetson_clocks"], before["fan_profile"])
    assert setter_lines(rig.emulator) == [] and not SET_LINE.search(mapper.log())
    assert "nvpmodel_id has a desired value but is not writable; ignored" in mapper.log()
    assert "DMI UpdateDevice answered INVALID_ARGUMENT: device default/jetson-xavier: nvpmodel: unknown power mode" \
        in mapper.log()
    assert dmi_calls(mapper, "UpdateDevice", "INVALID_ARGUMENT") == len(REFUSED)
    assert twins(rig.fake)["nvpmodel_id"] == ("8", "")

    got = rig.fake.get_device(NS, NAME).device
    desired = {p.name: p.desired.value for p in got.spec.properties if p.HasField("desired")}
    assert desired["nvpmodel"] == "MODE_20W_6CORE" and desired["fan_profile"] == "quiet"
    assert desired["nvpmodel_id"] == "3"  # the accepted (ReadOnly) update is the running device now
    assert converged(mapper, "nvpmodel", "jetson_clocks", "fan_profile")


def test_mode_with_another_tpc_mask_is_refused_without_allow_reboot(rig: Rig) -> None:
    """AGX Orin 15W uses another TPC mask: refused with the reason (jetson-stats 7 knows it in advance,
    4.x only after the service refused once, so there the mapper gives up with the same explanation)."""
    rig.start(device_with(fan_profile=None, jetson_clocks=None, nvpmodel="MAXN"), profile="agx-orin-jp6")
    assert rig.emulator is not None
    mapper = rig.mapper()
    wait_until(lambda: converged(mapper, "nvpmodel"))
    _, wanted = device_with(fan_profile=None, jetson_clocks=None, nvpmodel="15W")
    if JTOP4:
        rig.fake.update_device(wanted)
        wait_until(lambda: metric(mapper, "jetson_setter_failures_total", "nvpmodel") == 1.0)
        assert "uses another TPC mask" in mapper.log() and "control.allow_reboot: true" in mapper.log()
        assert len([line for line in setter_lines(rig.emulator) if "different mask" in line]) == 1
    else:
        with pytest.raises(grpc.RpcError) as caught:
            rig.fake.update_device(wanted)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "uses another TPC mask" in str(caught.value.details())
        assert "control.allow_reboot: true" in str(caught.value.details())
        assert setter_lines(rig.emulator) == []
    with jtop_client(rig.emulator.socket, INTERVAL) as jetson:
        assert str(jetson.nvpmodel.name) == "MAXN"
    assert not any("NVPmodel started" in line for line in setter_lines(rig.emulator))


# --- 3. restart ------------------------------------------------------------------------------------------------

def test_restart_with_unchanged_desired_values_sends_no_setter(rig: Rig) -> None:
    """A second mapper finding the board already as desired reports convergence without a single setter."""
    rig.start(device_with(nvpmodel="MODE_10W_4CORE", jetson_clocks="true", fan_profile="manual", fan_speed="60"))
    assert rig.emulator is not None
    first = rig.mapper()
    wait_until(lambda: converged(first, *WRITABLE))
    assert len(setter_lines(rig.emulator)) >= 4
    first.stop()
    sent = setter_lines(rig.emulator)
    offset = len(first.log())

    second = rig.mapper()
    wait_until(lambda: converged(second, *WRITABLE))
    rig.reports_after(3)
    assert setter_lines(rig.emulator) == sent
    again = log_since(second, offset)
    assert "registered with EdgeCore" in again
    assert not SET_LINE.search(again), again
    assert twins(rig.fake)["nvpmodel"] == ("MODE_10W_4CORE", "MODE_10W_4CORE")


# --- 4. drift --------------------------------------------------------------------------------------------------

def test_drift_is_reported_and_reapplied_only_when_configured(rig: Rig) -> None:
    """A hand-made change shows as reported != desired and a drift count; re-applied only with reapply_on_drift."""
    rig.start(device_with())
    assert rig.emulator is not None
    mapper = rig.mapper()
    wait_until(lambda: converged(mapper, "fan_profile"))
    with jtop_client(rig.emulator.socket, INTERVAL) as jetson:
        fan = next(iter(jetson.fan.keys()))
        jetson.fan.set_profile(fan, "cool")
        settles(jetson, fan_profile="cool")
        wait_until(lambda: metric(mapper, "jetson_property_drift_total", "fan_profile") == 1.0)
        wait_until(lambda: twins(rig.fake).get("fan_profile") == ("cool", "quiet"))
        assert metric(mapper, "jetson_property_converged", "fan_profile") == 0.0
        rig.reports_after(3)  # several confirm timeouts: still nothing re-applied
        assert board(jetson)["fan_profile"] == "cool"
    assert [line for line in setter_lines(rig.emulator) if "set profile" in line] == [
        line for line in setter_lines(rig.emulator) if "set profile cool" in line]
    assert "fan_profile drifted to cool (desired quiet)" in mapper.log()
    mapper.stop()

    reapplying = rig.mapper(control={"reapply_on_drift": True})
    wait_until(lambda: converged(reapplying, "fan_profile"))  # first puts quiet back (a new target, not drift)
    with jtop_client(rig.emulator.socket, INTERVAL) as jetson:
        jetson.fan.set_profile(fan, "cool")
        wait_until(lambda: metric(reapplying, "jetson_property_drift_total", "fan_profile") == 1.0)
        settles(jetson, fan_profile="quiet")
    wait_until(lambda: converged(reapplying, "fan_profile"))
    assert "fan_profile drifted to cool (desired quiet); re-applying" in reapplying.log()


# --- 5. give up ------------------------------------------------------------------------------------------------

def uncontrolled_clocks_profile(workdir: str) -> str:
    """Xavier NX whose jetson_clocks ran before jtop.service started and was stopped by hand since: the service
    reports it 'uncontrolled' without a stored config, and the jetson-stats client silently drops set_enable."""
    document = json.loads(resolve_profile_path("xavier-nx-jp5").read_text(encoding="utf-8"))
    for sample in document["samples"]:
        sample["jc"] = {"enable": False, "thread": "uncontrolled", "config": False, "boot": False}
    path = os.path.join(workdir, "uncontrolled.json")
    Path(path).write_text(json.dumps(document), encoding="utf-8")
    return path


def test_setter_the_board_never_confirms_gives_up_with_a_counter(rig: Rig, workdir: str) -> None:
    """Bounded retries, one clear log line, jetson_setter_failures_total, twin shows desired != reported."""
    rig.start(device_with(jetson_clocks="true"), profile=uncontrolled_clocks_profile(workdir))
    assert rig.emulator is not None
    mapper = rig.mapper()
    wait_until(lambda: metric(mapper, "jetson_setter_failures_total", "jetson_clocks") == 1.0)
    assert "gave up setting jetson_clocks to true after 2 attempts; the board still reports False" in mapper.log()
    assert len(re.findall(r"set jetson_clocks to true \(attempt \d/2\)", mapper.log())) == 2
    assert metric(mapper, "jetson_property_converged", "jetson_clocks") == 0.0
    rig.reports_after(1)
    assert twins(rig.fake)["jetson_clocks"] == ("false", "true")
    assert setter_lines(rig.emulator) == []  # the client never passed it on


# --- 6. REST device methods ------------------------------------------------------------------------------------

def test_rest_device_methods_listing_and_guarded_writes(rig: Rig, workdir: str) -> None:
    """Methods are listed; writes are 403 while disabled, 401 without the token, and applied with it."""
    rig.start(device_with())
    assert rig.emulator is not None
    closed = rig.mapper()
    listing = closed.get_json(f"/api/v1/devicemethod/{NS}/{NAME}")["Data"]["Methods"]
    assert {m["Name"]: [p["PropertyName"] for p in m["Parameters"]] for m in listing} == {
        "setPowerMode": ["nvpmodel", "jetson_clocks"], "setFan": ["fan_profile", "fan_speed"]}
    write = f"/api/v1/devicemethod/{NS}/{NAME}/setFan/fan_profile/cool"
    status, body = closed.get(write, {"Authorization": "Bearer anything"})
    assert status == 403 and "rest_write_enabled" in body
    closed.stop()

    token = Path(workdir, "token")
    token.write_text("s3cret\n", encoding="utf-8")
    opened = rig.mapper(http={"rest_write_enabled": True, "rest_write_token_file": str(token)})
    assert opened.get(write)[0] == 401
    assert opened.get(write, {"Authorization": "Bearer wrong"})[0] == 401
    bearer = {"Authorization": "Bearer s3cret"}
    status, body = opened.get(f"/api/v1/devicemethod/{NS}/{NAME}/reboot/fan_profile/cool", bearer)
    assert status == 404 and "deviceMethod name reboot does not exist in device instance" in body
    status, body = opened.get(f"/api/v1/devicemethod/{NS}/{NAME}/setFan/nvpmodel/15W", bearer)
    assert status == 404 and "deviceProperty nvpmodel to be written is not in the list defined by devicemethod" in body
    status, body = opened.get(f"/api/v1/devicemethod/{NS}/{NAME}/setFan/fan_profile/turbo", bearer)
    assert status == 500 and "unknown fan profile 'turbo'" in body
    assert setter_lines(rig.emulator) == []

    status, body = opened.get(write, bearer)
    assert status == 200, body
    with jtop_client(rig.emulator.socket, INTERVAL) as jetson:
        settles(jetson, fan_profile="cool")
    wait_until(lambda: twins(rig.fake).get("fan_profile") == ("cool", "cool"))
    wait_until(lambda: converged(opened, "fan_profile"))

