"""MapperCollector in process: rows built once per sample stay right across samples and devices."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mapper.config import ControlConfig
from mapper.control.controller import Controller
from mapper.devices.registry import DeviceRegistry
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.dmi.manifests import load_manifests
from mapper.runtime import Runtime
from mapper.sinks.prometheus.collector import MapperCollector
from mapper.sinks.prometheus.families import FAMILIES, KeyRouter

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "tests" / "fixtures" / "jtop" / "agx-orin_jp5_built.json"


def runtime_with_two_devices() -> Runtime:
    """A runtime running the bundled Device twice (no desired values), before any sample."""
    registry = DeviceRegistry("jetson")
    runtime = Runtime(registry, Controller(None, ControlConfig()), 1.0)
    models, devices = load_manifests([REPO / "device-model" / "jetson-model.yaml",
                                      REPO / "device-model" / "jetson-xavier.yaml"])
    runtime.upsert_model(model_from_pb(models[0]))
    device = device_from_pb(devices[0])
    plain = tuple(replace(p, desired=None) for p in device.properties)
    for name in ("first", "second"):
        runtime.upsert_device(replace(device, name=name, properties=plain))
    runtime.on_availability(True, "test")
    return runtime


def values(registry: CollectorRegistry, metric: str) -> dict[str, float]:
    """Values of one metric by device name."""
    text = generate_latest(registry).decode()
    return {s.labels["device"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == metric}


def test_each_sample_is_exposed_for_every_device() -> None:
    runtime = runtime_with_two_devices()
    registry = CollectorRegistry()
    registry.register(MapperCollector(runtime, "node-a"))
    snapshot: dict[str, Any] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert values(registry, "jetson_uptime_seconds") == {}
    runtime.on_sample(snapshot)
    first = values(registry, "jetson_uptime_seconds")
    assert set(first) == {"first", "second"} and len(set(first.values())) == 1
    assert values(registry, "jetson_uptime_seconds") == first  # the same sample scraped again
    later = copy.deepcopy(snapshot)
    assert snapshot["uptime"] == "3 days, 4:05:06.500000"  # jtop's timedelta, as the client dump shows it
    later["uptime"] = "3 days, 4:05:11.500000"
    runtime.on_sample(later)
    assert values(registry, "jetson_uptime_seconds") == {name: value + 5 for name, value in first.items()}
    runtime.on_sample(snapshot)  # a new readings object with the first values: rows must follow it
    assert values(registry, "jetson_uptime_seconds") == first
    runtime.on_availability(False, "gone")
    assert values(registry, "jetson_uptime_seconds") == {}, "offline: no board series"


def test_key_router_routes_keys_to_families_and_stays_bounded() -> None:
    router = KeyRouter()
    routed = router.route("power.rail.VDD_IN.avg")
    assert routed is not None and routed[0].name == "jetson_power_average_watts" and routed[1] == ("VDD_IN",)
    assert router.route("board.model") is None
    assert router.route("cpu.core.3.usage") == (next(f for f in FAMILIES if f.name == "jetson_cpu_core_usage_ratio"),
                                                ("3",))
    for index in range(KeyRouter.MAX_KEYS + 10):
        router.route(f"temperature.zone{index}")
    assert len(router._routes) <= KeyRouter.MAX_KEYS
