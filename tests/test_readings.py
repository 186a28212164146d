"""normalise() against recorded, emulated and built jtop samples, and against garbage."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from mapper.readings.normaliser import normalise

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "jtop"
ORIN_NANO = "orin-nano-4gb_jp6.2_jtop4x_recorded.json"
EMULATED_4 = "emulated_x86_jtop4.2.7_orin-nano-like.json"
EMULATED_7 = "emulated_x86_jtop7.2.2_orin-nano-like.json"
EMULATED_7_FAN = "emulated_x86_jtop7.2.2_nvfancontrol.json"
XAVIER_NX_JP5 = "xavier-nx_jp5_built.json"
AGX_ORIN_JP5 = "agx-orin_jp5_built.json"


def load(name: str) -> dict[str, Any]:
    """A fixture file as a dict."""
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def test_orin_nano_recorded_values() -> None:
    r = normalise(load(ORIN_NANO))
    assert r["gpu.name"] == "gpu"
    assert r["gpu.usage"] == 4.8
    assert r["gpu.freq"] == 306_000_000
    assert r["gpu.freq.max"] == 1_020_000_000
    assert r["temperature.cpu"] == 46.062
    assert r["temperature.tj"] == 47.906
    assert "temperature.cv0" not in r and "temperature.cv2" not in r
    assert r["power.total"] == 5.133
    assert r["power.total.avg"] == 4.8
    assert r["power.total.source"] == "VDD_IN"
    assert r["power.rail.VDD_SOC.power"] == 1.54
    assert r["power.rail.VDD_SOC.voltage"] == 4.936
    assert r["power.rail.VDD_SOC.current"] == 0.312
    assert r["power.rail.VDD_CPU_GPU_CV.avg"] == 0.806
    assert "power.rail.VDD_IN.power" not in r
    assert r["nvpmodel.name"] == "25W"
    assert "nvpmodel.id" not in r  # the recorded client printed only the name
    assert r["jetson_clocks"] is False
    assert r["uptime"] == pytest.approx(931.41)
    assert r["ram.total"] == 3_688_892 * 1024
    assert r["ram.used"] == 1_687_344 * 1024
    assert r["ram.usage"] == pytest.approx(45.741214435)
    assert r["swap.total"] == 1_844_424 * 1024
    assert r["emc.usage"] == 0.0
    assert r["emc.freq"] == 2_133_000_000 and r["emc.freq.max"] == 3_199_000_000
    assert r["cpu.cores.total"] == 6 and r["cpu.cores.online"] == 6
    assert r["cpu.core.5.usage"] == pytest.approx(3.0)
    assert r["cpu.core.0.freq"] == 1_344_000_000
    idles = [82.4742268041237, 61.61616161616161, 91.83673469387756, 91.83673469387756,
             95.91836734693877, 97.0]
    assert r["cpu.usage"] == pytest.approx(sum(100 - i for i in idles) / 6)
    assert r["cpu.freq"] == round((4 * 1_344_000_000 + 2 * 729_600_000) / 6)
    assert r["fan.name"] == "pwmfan"
    assert r["fan.speed"] == pytest.approx(26.2745098)
    assert r["fan.rpm"] == 1145
    assert (r["fan.profile"], r["fan.governor"], r["fan.control"]) == ("quiet", "cont", "close_loop")
    assert r["fan.pwmfan.0.rpm"] == 1145
    assert r["engine.NVJPG.NVJPG1.online"] is False
    assert r["engine.APE.APE.freq"] == 200_000_000
    assert r["processes.count"] == 5
    assert r["processes.ram"] == (4368 + 41188 + 11372 + 50308 + 15643) * 1024
    assert r["processes.gpu_memory"] == (0 + 3816 + 320 + 5704 + 27064) * 1024
    assert r["board.module"] == "NVIDIA Jetson Orin Nano (4GB ram)"
    assert r["board.soc"] == "tegra234"
    assert r["board.jetpack"] == "6.2" and r["board.l4t"] == "36.4.3"
    assert r["board.part_number"] == "699-13767-0004-300 N.2"
    assert r["board.p_number"] == "p3767-0004" and r["board.cuda_arch"] == "8.7"
    assert "board.codename" not in r


def test_readings_are_read_only() -> None:
    r = normalise(load(ORIN_NANO))
    with pytest.raises(TypeError):
        r["gpu.usage"] = 1.0  # type: ignore[index]


@pytest.mark.parametrize("name", [EMULATED_4, EMULATED_7])
def test_emulated_manual_fan_has_no_governor_or_control(name: str) -> None:
    r = normalise(load(name))
    assert r["fan.profile"] == "manual"
    assert r["fan.speed"] == 40.0
    assert "fan.governor" not in r and "fan.control" not in r


def test_emulated_nvfancontrol_fan_has_governor_and_control() -> None:
    r = normalise(load(EMULATED_7_FAN))
    assert (r["fan.profile"], r["fan.governor"], r["fan.control"]) == ("cool", "pid", "open_loop")
    assert r["fan.speed"] == 60.0 and r["fan.rpm"] == 2540


@pytest.mark.parametrize("name", [EMULATED_4, EMULATED_7, EMULATED_7_FAN])
def test_emulated_samples(name: str) -> None:
    r = normalise(load(name))
    # The emulator's /proc/stat never moves: jtop reports idle 0, i.e. 100 % busy, and so do we.
    assert r["cpu.usage"] == 100.0
    assert r["cpu.core.3.usage"] == 100.0
    assert (r["nvpmodel.name"], r["nvpmodel.id"], r["nvpmodel.default"]) == ("MAXTEST", 0, "MIN_MAX_TEST")
    assert r["jetson_clocks"] is False and r["jetson_clocks.status"] == "inactive"
    assert r["power.total"] == 6.229 and r["power.total.source"] == "VDD_IN"
    assert r["power.rail.VDD_CPU_GPU_CV.power"] == 1.559  # never the wrong 'Power cv0' of stats (<= 4.2.9)
    assert r["gpu.usage"] == 47.3
    assert r["engine.NVENC.NVENC.freq"] == 716_800_000 and r["engine.NVENC.NVENC.online"] is True
    assert "temperature.cv0" not in r
    assert r["swap.total"] == 0


def test_emulated_uptime_from_timedelta_text() -> None:
    assert normalise(load(EMULATED_4))["uptime"] == pytest.approx(477.58)


def test_jetpack5_upper_case_sensors_are_lower_cased() -> None:
    r = normalise(load(XAVIER_NX_JP5))
    assert r["temperature.cpu"] == 38.0 and r["temperature.gpu"] == 36.5
    assert r["temperature.tboard"] == 33.0 and r["temperature.ao"] == 36.5
    assert not [k for k in r if k.startswith("temperature.") and k != k.lower()]
    assert "temperature.tdiode" not in r  # offline zone


def test_nvpmodel_and_jetson_clocks_none_leave_keys_absent() -> None:
    r = normalise(load(XAVIER_NX_JP5))
    assert not [k for k in r if k.startswith(("nvpmodel", "jetson_clocks"))]


def test_offline_cores_excluded_from_usage_and_frequency() -> None:
    r = normalise(load(XAVIER_NX_JP5))
    assert (r["cpu.cores.total"], r["cpu.cores.online"]) == (6, 4)
    assert r["cpu.core.4.online"] is False and r["cpu.core.5.online"] is False
    assert "cpu.core.4.usage" not in r and "cpu.core.4.freq" not in r
    assert r["cpu.usage"] == pytest.approx((10 + 30 + 15 + 5) / 4)
    assert r["cpu.freq"] == round((3 * 1_190_400_000 + 1_420_800_000) / 4)


def test_empty_board_strings_are_absent() -> None:
    r = normalise(load(XAVIER_NX_JP5))
    assert "board.jetpack" not in r
    assert r["board.codename"] == "Jakku" and r["board.l4t"] == "35.4.1"


def test_agx_orin_total_without_name_is_a_sum() -> None:
    r = normalise(load(AGX_ORIN_JP5))
    assert r["power.total"] == 9.961 and r["power.total.avg"] == 9.8
    assert r["power.total.source"] == "sum"
    assert "power.rail.VDDQ_VDD2_1V8AO.power" not in r  # offline rail
    assert r["power.rail.VIN_SYS_5V0.power"] == 3.483


def test_agx_orin_other_sections() -> None:
    r = normalise(load(AGX_ORIN_JP5))
    assert r["temperature.tj"] == 48.5 and r["temperature.soc1"] == 45.9
    assert r["uptime"] == pytest.approx(3 * 86400 + 4 * 3600 + 5 * 60 + 6.5)
    assert (r["nvpmodel.name"], r["nvpmodel.default"]) == ("MAXN", "50W")
    assert r["jetson_clocks"] is True and r["jetson_clocks.status"] == "running"
    assert r["processes.count"] == 1  # the malformed row is skipped
    assert r["processes.gpu_memory"] == 1_048_576 * 1024 and r["processes.cpu"] == 35.5
    assert r["engine.DLA0.DLA0_CORE.online"] is False


def test_missing_tot_sums_online_rails() -> None:
    snapshot = load(AGX_ORIN_JP5)
    del snapshot["power"]["tot"]
    r = normalise(snapshot)
    assert r["power.total"] == pytest.approx(4.485 + 1.993 + 3.483)
    assert r["power.total.avg"] == pytest.approx(4.3 + 2.0 + 3.5)
    assert r["power.total.source"] == "sum"


def test_ga10b_gpu_key() -> None:
    snapshot = load(ORIN_NANO)
    snapshot["gpu"] = {"ga10b": snapshot["gpu"]["gpu"]}
    r = normalise(snapshot)
    assert r["gpu.name"] == "ga10b" and r["gpu.usage"] == 4.8 and r["gpu.freq"] == 306_000_000


def test_power_never_comes_from_stats() -> None:
    r = normalise(load("orin-nano_jp6_stats_recorded.json"))
    assert not [k for k in r if k.startswith(("power", "temperature", "cpu"))]


def all_fixture_snapshots() -> Iterator[Mapping[str, Any]]:
    """Every fixture and every object one level down in it."""
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        yield data
        yield from (value for value in data.values() if isinstance(value, dict))


def test_minus_256_and_non_finite_never_appear() -> None:
    count = 0
    for snapshot in all_fixture_snapshots():
        for key, value in normalise(snapshot).items():
            count += 1
            if isinstance(value, float):
                assert math.isfinite(value), key
            assert value != -256, key
    assert count > 300


def test_legacy_3x_shapes_do_not_crash_and_give_nothing_wrong() -> None:
    legacy = load("legacy_jtop3x_stats_recorded.json")
    for board in legacy.values():
        if "stats" in board:
            assert dict(normalise(board)) == {}
            assert not [k for k in normalise(board["stats"]) if k != "uptime"]
    assert "uptime" not in normalise(legacy["nano_jp4.6_l4t32.6.1"]["stats"])  # "timedelta(...)" text
    assert normalise(legacy["agx_xavier_8cpu"]["stats"])["uptime"] == pytest.approx(82072.71)


class ExplodingMapping(Mapping[str, Any]):
    """A section whose iteration raises, to prove one bad section cannot hide the others."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


GARBAGE: list[tuple[str, Any, str]] = [
    ("cpu", "x", "cpu."),
    ("cpu", {"cpu": [None, 5, {"online": "yes"}, {"online": True, "idle": "lots"}]}, "cpu.usage"),
    ("gpu", {"gpu": None}, "gpu."),
    ("gpu", [], "gpu."),
    ("memory", {"RAM": {"tot": "big", "used": None}, "EMC": 3}, "ram."),
    ("temperature", {"cpu": {"temp": float("nan")}, "gpu": {"temp": True}, "soc": 5}, "temperature."),
    ("power", {"rail": [1, 2], "tot": {"power": float("inf")}}, "power."),
    ("fan", {"pwmfan": {"speed": "fast", "rpm": [None]}}, "fan.speed"),
    ("nvpmodel", 5, "nvpmodel."),
    ("jetson_clocks", "ON", "jetson_clocks"),
    ("board", "Jetson", "board."),
    ("engine", {"APE": ["APE"]}, "engine."),
    ("uptime", -5, "uptime"),
    ("uptime", True, "uptime"),
    ("uptime", "yesterday", "uptime"),
    ("temperature", ExplodingMapping(), "temperature."),
]


@pytest.mark.parametrize(("section", "value", "absent_prefix"), GARBAGE, ids=[f"{g[0]}-{i}" for i, g in
                                                                              enumerate(GARBAGE)])
def test_garbage_section_only_drops_its_own_keys(section: str, value: Any, absent_prefix: str) -> None:
    snapshot = load(ORIN_NANO)
    snapshot[section] = value
    r = normalise(snapshot)
    assert not [k for k in r if k.startswith(absent_prefix)]
    if section != "board":  # other sections survive
        assert r["board.soc"] == "tegra234"
    if section != "gpu":
        assert r["gpu.usage"] == 4.8
    if section != "power":
        assert r["power.total"] == 5.133


def test_malformed_process_rows_are_not_counted() -> None:
    snapshot = load(ORIN_NANO)
    snapshot["processes"] = [[1, 2, 3], "row", None, [1, "u", "I", "G", 20, "S", "x", 10, 10, "n"]]
    r = normalise(snapshot)
    assert (r["processes.count"], r["processes.ram"], r["processes.gpu_memory"]) == (0, 0, 0)


def test_not_a_mapping_gives_empty_readings() -> None:
    assert dict(normalise([])) == {}  # type: ignore[arg-type]
    assert dict(normalise({})) == {}
