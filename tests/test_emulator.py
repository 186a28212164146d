"""The unmodified jetson-stats client against the jtop.service emulator, for every built-in profile."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from common import short_dir, stop_process
from emulator_support import (
    INTERVAL,
    client,
    emulator,
    expected_sample,
    fresh_raw,
    profile,
    raw,
    wait_for,
)
from jtop import JtopException

from mapper.emulator.profile import ProfileError, builtin_profile_names, load_profile
from mapper.emulator.synth import pwm_to_percent

pytestmark = pytest.mark.jtop
PROFILES = builtin_profile_names()


def test_all_four_builtin_profiles_are_shipped() -> None:
    assert PROFILES == ["agx-orin-jp6", "nano-jp4", "orin-nano-jp6", "xavier-nx-jp5"]


@pytest.mark.parametrize("name", PROFILES)
def test_client_reads_the_profile(name: str) -> None:
    board = profile(name)
    with short_dir() as folder, emulator(name, str(folder / "j.sock")), client(str(folder / "j.sock")) as jetson:
        assert jetson.board["hardware"] == board.init["board"]["hardware"]
        assert jetson.interval == INTERVAL
        assert jetson.nvpmodel.models == board.init["nvpmodel"]["models"]
        assert jetson.nvpmodel.get_default() == board.init["nvpmodel"]["default"]
        assert {fan: jetson.fan.all_profiles(fan) for fan in jetson.fan} == board.init["fan"]
        assert (jetson.jetson_clocks is not None) == board.init["jc"]
        sample = fresh_raw(jetson)
        assert sample == expected_sample(board, sample)
        later = fresh_raw(jetson, 3)
        assert later == expected_sample(board, later)
        assert later["cpu"] != sample["cpu"], "loads must vary over time"
        assert later["power"]["tot"]["power"] != sample["power"]["tot"]["power"]
        offline = [s for s in later["temperature"].values() if not s["online"]]
        assert all(s["temp"] == -256 for s in offline)


@pytest.mark.parametrize("name", PROFILES)
def test_setters_round_trip(name: str) -> None:
    board = profile(name)
    with short_dir() as folder, emulator(name, str(folder / "j.sock")), client(str(folder / "j.sock")) as jetson:
        current = jetson.nvpmodel.id
        masks = board.nvpmodel_masks
        target = next(i for i, mask in enumerate(masks) if mask == masks[current] and i != current)
        jetson.nvpmodel = target
        wait_for(lambda: jetson.nvpmodel.id == target, f"nvpmodel {target}")
        assert jetson.nvpmodel.name == board.init["nvpmodel"]["models"][target]

        jetson.jetson_clocks = True
        wait_for(lambda: bool(jetson.jetson_clocks), "jetson_clocks on")
        gpu = next(iter(raw(jetson)["gpu"].values()))
        assert gpu["freq"]["min"] == gpu["freq"]["max"] == gpu["freq"]["cur"]
        jetson.jetson_clocks = False
        wait_for(lambda: not bool(jetson.jetson_clocks), "jetson_clocks off")

        fan = next(iter(jetson.fan))
        other = next(p for p in jetson.fan.all_profiles(fan) if p != "manual")
        jetson.fan.profile = "manual"
        wait_for(lambda: jetson.fan.profile == "manual", "manual fan profile")
        assert "governor" not in jetson.fan[fan]
        jetson.fan.speed = 30
        wait_for(lambda: jetson.fan.speed == pwm_to_percent(76), "fan speed 29.8")
        assert 29.8 < jetson.fan.speed < 29.81
        jetson.fan.profile = other
        wait_for(lambda: jetson.fan.profile == other, f"fan profile {other}")


def test_client_refuses_unknown_mode_and_profile() -> None:
    with short_dir() as folder, emulator("orin-nano-jp6", str(folder / "j.sock")), \
            client(str(folder / "j.sock")) as jetson:
        with pytest.raises(JtopException, match="does not exists"):
            jetson.nvpmodel = 7
        with pytest.raises(JtopException, match="Available"):
            jetson.fan.profile = "turbo"


def test_service_refuses_mode_with_another_tpc_mask() -> None:
    board = profile("agx-orin-jp6")
    other_mask = next(i for i, m in enumerate(board.nvpmodel_masks) if m != board.nvpmodel_masks[0])
    with short_dir() as folder, emulator("agx-orin-jp6", str(folder / "j.sock")), \
            client(str(folder / "j.sock")) as jetson:
        before = jetson.nvpmodel.id
        assert board.nvpmodel_masks[before] != board.nvpmodel_masks[other_mask]
        jetson.nvpmodel.set_nvpmodel_id(other_mask, False)
        # The service answers in later samples only: the mode stays and the mode's status reads False.
        wait_for(lambda: jetson.nvpmodel.status[other_mask] is False, "status False for the refused mode")
        fresh_raw(jetson, 3)
        assert jetson.nvpmodel.id == before


def test_version_mismatch_is_reported_by_the_client() -> None:
    with short_dir() as folder, emulator("nano-jp4", str(folder / "j.sock"), service_version="1.0.0"), \
            pytest.raises(JtopException, match=r"Mismatch version jtop service: \[1.0.0\]"), \
            client(str(folder / "j.sock")):
        pass


def test_socket_permissions_stale_file_and_busy_socket() -> None:
    with short_dir() as folder:
        socket_path = folder / "run" / "jtop.sock"
        socket_path.parent.mkdir()
        socket_path.write_text("stale")
        with emulator("nano-jp4", str(socket_path)):
            mode = os.stat(socket_path).st_mode
            assert stat.S_ISSOCK(mode)
            assert stat.S_IMODE(mode) == 0o660
            second = subprocess.run([sys.executable, "-m", "mapper.emulator", "emulate", "--profile", "nano-jp4",
                                     "--socket", str(socket_path)], capture_output=True, text=True, timeout=30)
            assert second.returncode == 2
            assert "already listening" in second.stderr
        assert not socket_path.exists()


def test_sampling_stops_when_clients_go_quiet() -> None:
    with short_dir() as folder, emulator("nano-jp4", str(folder / "j.sock")):
        with client(str(folder / "j.sock")) as jetson:
            fresh_raw(jetson)
        log = Path(f"{folder / 'j.sock'}.log")
        wait_for(lambda: "sampling stopped" in log.read_text(), "sampling to stop")


def test_unknown_profile_is_one_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "mapper.emulator", "emulate", "--profile", "tx9",
                             "--socket", "/tmp/jm-never.sock"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown profile 'tx9'" in result.stderr and "orin-nano-jp6" in result.stderr


def test_record_then_replay_gives_the_same_values() -> None:
    with short_dir() as folder:
        source, replay, recording = str(folder / "a.sock"), str(folder / "b.sock"), folder / "rec.json"
        with emulator("orin-nano-jp6", source), client(source) as original:
            board, fans = original.board["hardware"], {f: original.fan.all_profiles(f) for f in original.fan}
            models = original.nvpmodel.models
            result = subprocess.run([sys.executable, "-m", "mapper.emulator", "record", "--socket", source,
                                     "--out", str(recording), "--samples", "3", "--interval", str(INTERVAL)],
                                    capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, result.stderr
        recorded = load_profile(recording)
        assert len(recorded.samples) == 3
        assert len({s["uptime"] for s in recorded.samples}) == 3
        process = None
        try:
            with emulator(recording, replay) as process, client(replay) as jetson:
                assert raw(jetson) in recorded.samples
                assert jetson.board["hardware"] == board
                assert {f: jetson.fan.all_profiles(f) for f in jetson.fan} == fans
                assert jetson.nvpmodel.models == models
                assert jetson.nvpmodel.status == recorded.samples[0]["nvp"]["status"]
        finally:
            if process is not None:
                stop_process(process)


def test_emulator_package_does_not_import_jtop() -> None:
    code = ("import sys, mapper.emulator.commands, mapper.emulator.process, mapper.emulator.__main__; "
            "print('jtop' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


def test_bad_profile_lists_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other", "init": {"board": {}, "memory": "/swfile"}, "samples": [{"uptime": 1}]}')
    with pytest.raises(ProfileError) as refused:
        load_profile(bad)
    message = str(refused.value)
    for problem in ("format must be", "init lacks 'fan'", "init lacks 'jc'", "lacks 'hardware'",
                    "samples[0] lacks cpu, gpu, mem, fan"):
        assert problem in message
    result = subprocess.run([sys.executable, "-m", "mapper.emulator", "emulate", "--profile", str(bad),
                             "--socket", str(tmp_path / "x.sock")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "init lacks 'fan'" in result.stderr
