"""A real Prometheus scrapes the mapper fed by the jtop emulator; its query API returns what the board served.

The reference is a real jetson-stats client on the same emulator socket: it sees the same service samples
as the mapper, each identified by the board's uptime, so Prometheus' points are compared sample by sample.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from common import new_short_dir
from emulator_support import client
from mapper_process import DEVICE_MODEL, Emulator, Mapper, wait_until
from metrics_scrape import promtool_check_metrics, sample_values, scrape
from prometheus import Prometheus, running_prometheus

pytestmark = [pytest.mark.slow, pytest.mark.jtop]

PROFILE = "xavier-nx-jp5"
INTERVAL = 1.0
DEVICE = {"namespace": "default", "device": "jetson-xavier", "node": "test-node"}
WINDOW_S = 12.0
FREEZE_INTERVAL = 2.0


class SampleRecorder:
    """Keeps every raw service sample a jetson-stats client sees, by the board uptime it carries."""

    def __init__(self, jetson: Any) -> None:
        self._jetson = jetson
        self.samples: dict[float, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            sample = json.loads(self._jetson.json())
            self.samples.setdefault(round(float(sample["uptime"]), 2), sample)

    def __enter__(self) -> SampleRecorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def latest(self) -> dict[str, Any]:
        """The newest sample seen."""
        return self.samples[max(self.samples)]


@dataclass
class Stack:
    """Emulator, mapper, reference client and Prometheus, all running."""

    emulator: Emulator
    mapper: Mapper
    jetson: Any
    recorder: SampleRecorder
    prometheus: Prometheus
    extra: dict[str, Any] = field(default_factory=dict)


def standalone_config(workdir: str, emulator: Emulator) -> dict[str, Any]:
    """The demo's setup as a config file: the bundled DeviceModel and Xavier Device, 1 s samples."""
    return {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": INTERVAL},
        "standalone": {"files": [str(DEVICE_MODEL / "jetson-model.yaml"), str(DEVICE_MODEL / "jetson-xavier.yaml")]},
        "node_name": DEVICE["node"],
    }


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Everything started once for the module, stopped in reverse order."""
    workdir = new_short_dir()
    with ExitStack() as stop:
        stop.callback(shutil.rmtree, workdir, True)
        emulator = Emulator(workdir, PROFILE, interval=INTERVAL).start()
        stop.callback(emulator.stop)
        mapper = Mapper(workdir, standalone_config(workdir, emulator))
        stop.callback(mapper.stop)
        mapper.start()
        # every test may be the module's first on its xdist worker: none may see a page without the board yet
        wait_until(lambda: "\njetson_uptime_seconds{" in scrape(mapper.base), "the mapper's first sample", timeout=30)
        jetson = stop.enter_context(client(emulator.socket, interval=INTERVAL))
        recorder = stop.enter_context(SampleRecorder(jetson))
        prometheus = stop.enter_context(running_prometheus([f"127.0.0.1:{mapper.port}"]))
        yield Stack(emulator, mapper, jetson, recorder, prometheus)


def only(result: list[Any]) -> tuple[dict[str, str], float]:
    """Labels and value of a one-element instant vector."""
    assert len(result) == 1, result
    return result[0]["metric"], float(result[0]["value"][1])


def test_instant_queries_return_the_boards_facts(stack: Stack) -> None:
    prom = stack.prometheus
    labels, ram_total = only(prom.wait_for('jetson_memory_total_bytes{memory="ram"}'))
    assert {k: labels[k] for k in DEVICE} == DEVICE
    sample = stack.recorder.latest()
    assert ram_total == sample["mem"]["RAM"]["tot"] * 1024

    hardware = stack.jetson.board["hardware"]
    info, one = only(prom.wait_for("jetson_info"))
    assert one == 1.0
    assert (info["model"], info["soc"], info["jetpack"], info["l4t"], info["codename"]) == (
        hardware["Model"], hardware["SoC"], hardware["Jetpack"], hardware["L4T"], hardware["Codename"])

    mode, _ = only(prom.wait_for("jetson_power_mode == 1"))
    assert mode["mode"] == stack.jetson.nvpmodel.name
    modes = prom.wait_for("jetson_power_mode")
    assert sorted(series["metric"]["mode"] for series in modes) == sorted(stack.jetson.nvpmodel.models)

    rails = prom.wait_for("jetson_power_watts")
    assert {series["metric"]["rail"] for series in rails} == set(sample["power"]["rail"])
    _, source = only(prom.wait_for('jetson_power_input_watts{source="VDD_IN"}'))
    assert source > 0
    cores = prom.wait_for("jetson_cpu_core_online")
    assert len(cores) == len(sample["cpu"]["cpu"])
    sensors = {series["metric"]["sensor"] for series in prom.wait_for("jetson_temperature_celsius")}
    online = {name.lower() for name, zone in sample["temperature"].items() if zone.get("online", True)}
    assert sensors == online, "every online thermal zone, no offline one"


def points(prom: Prometheus, expr: str, start: float, end: float) -> dict[float, float]:
    """A range query of a single series as {timestamp: value}."""
    result = prom.query_range(expr, start, end, step=1.0)
    assert result is not None and len(result) == 1, (expr, result)
    return {float(t): float(v) for t, v in result[0]["values"]}


def test_range_queries_match_the_emulator_sample_by_sample(stack: Stack) -> None:
    prom = stack.prometheus
    prom.wait_for(f"count_over_time(jetson_uptime_seconds[1m]) >= {WINDOW_S + 3}", deadline=90)
    end = time.time()
    start = end - WINDOW_S
    uptime = points(prom, "jetson_uptime_seconds", start, end)
    series: dict[str, tuple[dict[float, float], Callable[[dict[str, Any]], float]]] = {
        "gpu load %": (points(prom, "jetson_gpu_usage_ratio * 100", start, end),
                       lambda s: s["gpu"]["gpu"]["status"]["load"]),
        "ram used kB": (points(prom, 'jetson_memory_used_bytes{memory="ram"} / 1024', start, end),
                        lambda s: s["mem"]["RAM"]["used"]),
        "VDD_SOC mW": (points(prom, 'jetson_power_watts{rail="VDD_SOC"} * 1000', start, end),
                       lambda s: s["power"]["rail"]["VDD_SOC"]["power"]),
        "gpu zone °C": (points(prom, 'jetson_temperature_celsius{sensor="gpu"}', start, end),
                        lambda s: s["temperature"]["GPU"]["temp"]),  # JetPack 5 zone names are upper case
    }
    matched = 0
    for t, board_uptime in sorted(uptime.items()):
        sample = stack.recorder.samples.get(round(board_uptime, 2))
        if sample is None:  # the reference client may miss a sample the mapper got
            continue
        matched += 1
        for what, (values, expected) in series.items():
            assert values[t] == pytest.approx(expected(sample), abs=1e-6), (what, t, board_uptime)
    assert matched >= WINDOW_S / 2, f"only {matched} of {len(uptime)} points found among the client's samples"
    ordered = [uptime[t] for t in sorted(uptime)]
    assert ordered == sorted(ordered) and ordered[-1] - ordered[0] >= WINDOW_S / 2, "uptime must grow"
    loads = {value for value, _ in series["gpu load %"][0].items()}
    assert len(loads) > 1, "the window must hold changing values for the comparison to mean anything"


def test_promtool_accepts_the_live_exposition_and_series_stay_put(stack: Stack) -> None:
    first = scrape(stack.mapper.base)
    promtool_check_metrics(first)
    before = {(name, tuple(sorted(labels.items()))) for name, labels, _ in sample_values(first)}
    baseline = stack.recorder.latest()["uptime"]
    wait_until(lambda: stack.recorder.latest()["uptime"] >= baseline + 3 * INTERVAL, timeout=30)
    later = scrape(stack.mapper.base)
    promtool_check_metrics(later)
    after = {(name, tuple(sorted(labels.items()))) for name, labels, _ in sample_values(later)}
    assert after == before, f"series came or went: {sorted(after ^ before)}"
    head = stack.prometheus.wait_for('count({__name__=~"jetson_.+", job="jetson-mapper"})')
    assert float(head[0]["value"][1]) == len(before)


def uptime_of(text: str) -> float | None:
    """The jetson_uptime_seconds value of an exposition."""
    values = [v for name, _, v in sample_values(text) if name == "jetson_uptime_seconds"]
    return values[0] if values else None


@pytest.fixture
def lone_mapper() -> Iterator[tuple[Emulator, Mapper]]:
    """An emulator and a mapper of their own, sampling every FREEZE_INTERVAL (the test freezes the emulator)."""
    workdir = new_short_dir()
    with ExitStack() as stop:
        stop.callback(shutil.rmtree, workdir, True)
        emulator = Emulator(workdir, PROFILE, interval=FREEZE_INTERVAL).start()
        stop.callback(emulator.stop)
        config = standalone_config(workdir, emulator)
        config["source"]["interval"] = FREEZE_INTERVAL
        mapper = Mapper(workdir, config)
        stop.callback(mapper.stop)
        mapper.start()
        yield emulator, mapper


def test_a_scrape_never_calls_jtop(lone_mapper: tuple[Emulator, Mapper]) -> None:
    """While jtop.service is frozen (SIGSTOP), any call into the jtop client blocks; /metrics must not.

    The freeze stays under 3 sample intervals, the silence after which jtop.service stops sampling and
    the mapper declares the source lost, so the same board comes back afterwards.
    """
    emulator, mapper = lone_mapper
    assert emulator.process is not None
    wait_until(lambda: uptime_of(scrape(mapper.base)), timeout=30)
    began = time.monotonic()
    burst = {uptime_of(scrape(mapper.base)) for _ in range(50)}
    spanned = time.monotonic() - began
    assert len(burst) <= spanned / FREEZE_INTERVAL + 2, f"50 scrapes in {spanned:.2f}s saw {len(burst)} samples"

    os.kill(emulator.process.pid, signal.SIGSTOP)
    try:
        frozen_at = time.monotonic()
        seen: list[float | None] = []
        while time.monotonic() - frozen_at < 1.5 * FREEZE_INTERVAL:
            seen.append(uptime_of(scrape(mapper.base, timeout=FREEZE_INTERVAL / 2)))
    finally:
        os.kill(emulator.process.pid, signal.SIGCONT)
    uptimes = [u for u in seen if u is not None]
    assert len(uptimes) == len(seen), "the last sample must stay exposed while the service is silent"
    assert len(uptimes) >= 10
    first = min(uptimes)
    steps = {round((u - first) / FREEZE_INTERVAL, 3) for u in uptimes}
    assert steps <= {0.0, 1.0}, f"at most one sample in flight, saw uptimes {sorted(set(uptimes))}"
    wait_until(lambda: (uptime_of(scrape(mapper.base)) or 0) > first + FREEZE_INTERVAL, timeout=60)
