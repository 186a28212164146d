"""JtopSource (the mapper's one jetson-stats client) against the jtop.service emulator."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from common import short_dir, stop_process
from emulator_support import INTERVAL, emulator, expected_sample, profile, wait_for

from mapper.emulator.process import spawn_emulator
from mapper.emulator.profile import builtin_profile_names
from mapper.emulator.synth import pwm_to_percent
from mapper.source.jtop import JtopSource, SetterRefused, Snapshot, SourceUnavailable, client_version

pytestmark = pytest.mark.jtop
SNAPSHOT_KEYS = {"time", "interval", "uptime", "board", "cpu", "gpu", "memory", "fan", "temperature", "power",
                 "engine", "processes", "nvpmodel", "jetson_clocks", "fan_profiles"}


class Recorder:
    """Collects what the source hands over."""

    def __init__(self) -> None:
        self.samples: list[Snapshot] = []
        self.changes: list[tuple[bool, str]] = []
        self.lock = threading.Lock()

    def on_sample(self, snapshot: Snapshot) -> None:
        with self.lock:
            self.samples.append(snapshot)

    def on_availability(self, available: bool, reason: str) -> None:
        with self.lock:
            self.changes.append((available, reason))

    def newer(self, source: JtopSource, count: int = 1) -> Snapshot:
        """A snapshot at least `count` samples newer than the latest one now."""
        start = (source.latest() or {}).get("uptime", -1.0)
        return dict(wait_for(lambda: (lambda s: s if s and s["uptime"] >= start + count * INTERVAL - 0.01
                                      else None)(source.latest()), f"{count} newer snapshots"))


@contextmanager
def running_source(socket_path: str, recorder: Recorder) -> Iterator[JtopSource]:
    source = JtopSource(socket_path, INTERVAL, recorder.on_sample, recorder.on_availability,
                        backoff_initial=0.1, backoff_max=0.5, clock=lambda: 1234.5)
    source.start()
    try:
        yield source
    finally:
        source.stop()


@pytest.mark.parametrize("name", builtin_profile_names())
def test_snapshot_is_plain_and_matches_the_board(name: str) -> None:
    board = profile(name)
    recorder = Recorder()
    with short_dir() as folder, emulator(name, str(folder / "j.sock")), \
            running_source(str(folder / "j.sock"), recorder) as source:
        wait_for(lambda: source.available, "source available")
        snapshot = recorder.newer(source)
        assert set(snapshot) == SNAPSHOT_KEYS
        assert json.loads(json.dumps(snapshot)) == snapshot, "only plain JSON types"
        assert snapshot["time"] == 1234.5
        assert snapshot["interval"] == INTERVAL
        expected = expected_sample(board, {"uptime": snapshot["uptime"]})
        for ours, theirs in (("cpu", "cpu"), ("gpu", "gpu"), ("memory", "mem"), ("fan", "fan"),
                             ("temperature", "temperature"), ("power", "power"), ("engine", "engines"),
                             ("processes", "processes")):
            assert snapshot[ours] == expected[theirs], ours
        assert snapshot["board"]["hardware"] == board.init["board"]["hardware"]
        nvp = board.init["nvpmodel"]
        assert snapshot["nvpmodel"]["models"] == nvp["models"]
        assert snapshot["nvpmodel"]["default"] == nvp["default"]
        assert snapshot["nvpmodel"]["id"] == expected["nvp"]["model"]["id"]
        assert snapshot["nvpmodel"]["status"] == expected["nvp"]["status"]
        assert snapshot["jetson_clocks"] == {"enable": False, "status": "inactive", "boot": False, "config": True}
        assert snapshot["fan_profiles"] == board.init["fan"]
        assert source.latest() is recorder.samples[-1] or source.latest() in recorder.samples


def test_a_snapshot_keeps_its_values_when_the_next_samples_arrive() -> None:
    """The snapshot holds the client's objects without copying them: the client must hand out a new object tree
    for every sample and never change one it handed out before (true for 4.2.x and 7.x)."""
    recorder = Recorder()
    with short_dir() as folder, emulator("agx-orin-jp6", str(folder / "j.sock")), \
            running_source(str(folder / "j.sock"), recorder) as source:
        first = wait_for(lambda: source.latest(), "a first snapshot")
        frozen = json.loads(json.dumps(first))
        later = recorder.newer(source, count=3)
        assert json.loads(json.dumps(first)) == frozen, "a later sample changed an earlier snapshot"
        assert later["uptime"] > first["uptime"]
        for section in ("cpu", "gpu", "memory", "fan", "temperature", "power", "engine", "processes"):
            assert later[section] is not first[section], section
        assert later["cpu"]["cpu"] is not first["cpu"]["cpu"], "nested objects are new too"


def test_setters_show_in_later_snapshots() -> None:
    recorder = Recorder()
    with short_dir() as folder, emulator("xavier-nx-jp5", str(folder / "j.sock")), \
            running_source(str(folder / "j.sock"), recorder) as source:
        wait_for(lambda: source.latest(), "first snapshot")
        source.set_nvpmodel(3)
        snapshot = wait_for(lambda: (lambda s: s if s["nvpmodel"]["id"] == 3 else None)(source.latest()),
                            "nvpmodel 3")
        assert snapshot["nvpmodel"]["name"] == "MODE_10W_2CORE"
        online = [c for c in recorder.newer(source)["cpu"]["cpu"] if c["online"]]
        assert len(online) == 2, "MODE_10W_2CORE leaves two cores online"
        source.set_jetson_clocks(True)
        wait_for(lambda: source.latest()["jetson_clocks"]["enable"], "jetson_clocks on")
        source.set_jetson_clocks(False)
        wait_for(lambda: not source.latest()["jetson_clocks"]["enable"], "jetson_clocks off")
        source.set_fan_speed(30)
        fan = wait_for(lambda: (lambda f: f if f["speed"] == [pwm_to_percent(76)] else None)(
            source.latest()["fan"]["pwmfan"]), "fan at 29.8 %")
        assert fan["profile"] == "manual", "a speed needs the manual profile"
        source.set_fan_profile("cool")
        wait_for(lambda: source.latest()["fan"]["pwmfan"]["profile"] == "cool", "cool profile")


def test_refusals_name_what_is_allowed() -> None:
    recorder = Recorder()
    with short_dir() as folder, emulator("agx-orin-jp6", str(folder / "j.sock")), \
            running_source(str(folder / "j.sock"), recorder) as source:
        wait_for(lambda: source.latest(), "first snapshot")
        with pytest.raises(SetterRefused, match=r"Range \[0, 3\]"):
            source.set_nvpmodel(9)
        with pytest.raises(SetterRefused, match="quiet cool manual"):
            source.set_fan_profile("turbo")
        with pytest.raises(SetterRefused, match=r"0\.\.100"):
            source.set_fan_speed(150)
        if client_version().startswith("4."):
            # 4.x services report every mode as reachable: the service refuses later, the mode stays.
            source.set_nvpmodel(1)
            wait_for(lambda: source.latest()["nvpmodel"]["status"][1] is False, "the refused mode marked False")
            assert recorder.newer(source, 3)["nvpmodel"]["id"] == 0
        else:
            with pytest.raises(SetterRefused, match=r"another TPC mask.*0=MAXN, 2=30W, 3=50W"):
                source.set_nvpmodel(1)


def test_setters_without_a_service_raise_unavailable() -> None:
    recorder = Recorder()
    with short_dir() as folder, running_source(str(folder / "j.sock"), recorder) as source:
        wait_for(lambda: recorder.changes, "an availability report")
        assert recorder.changes[0][0] is False
        assert f"no socket at {folder / 'j.sock'}" in recorder.changes[0][1]
        assert not source.available
        with pytest.raises(SourceUnavailable):
            source.set_jetson_clocks(True)


def test_source_goes_unavailable_and_rebuilds_when_the_service_restarts() -> None:
    recorder = Recorder()
    with short_dir() as folder:
        socket_path = str(folder / "j.sock")
        process: Any = spawn_emulator("orin-nano-jp6", socket_path, INTERVAL)
        try:
            with running_source(socket_path, recorder) as source:
                wait_for(lambda: source.available, "source available")
                recorder.newer(source)
                process.kill()
                process.wait()
                wait_for(lambda: not source.available, "source unavailable after the kill")
                assert recorder.changes[-1][0] is False
                before = len(recorder.samples)
                process = spawn_emulator("orin-nano-jp6", socket_path, INTERVAL)
                wait_for(lambda: source.available, "source rebuilt after the restart")
                wait_for(lambda: len(recorder.samples) > before, "samples again")
                source.set_fan_profile("cool")  # setters use the rebuilt client's fresh connection
                wait_for(lambda: source.latest()["fan"]["pwmfan"]["profile"] == "cool", "cool after restart")
                states = [available for available, _ in recorder.changes]
                flips = [state for i, state in enumerate(states) if i == 0 or states[i - 1] != state]
                assert flips[-3:] == [True, False, True]
        finally:
            stop_process(process)


def test_version_mismatch_names_both_versions_and_the_fix() -> None:
    recorder = Recorder()
    with short_dir() as folder, emulator("nano-jp4", str(folder / "j.sock"), service_version="3.1.9"), \
            running_source(str(folder / "j.sock"), recorder) as source:
        reason = wait_for(lambda: next((r for a, r in recorder.changes if "3.1.9" in r), None), "mismatch")
        assert not source.available
        mine = client_version()
        assert f"jetson-stats 3.1.9 but the mapper's client is jetson-stats {mine}" in reason
        assert "jetson-stats==3.1.9" in reason and "JETSON_STATS_VERSION=3.1.9" in reason
        assert "\n" not in reason
