"""The runtime runs the attributor once per sample: /metrics rows per Device and the twin come from that sample."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pods_fixture import HOST_CGROUP_V2, Container, FakeNode, Process
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mapper.config import ControlConfig
from mapper.control.controller import Controller
from mapper.devices.registry import DeviceRegistry
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.dmi.manifests import load_manifests
from mapper.pods.attributor import PodAttributor
from mapper.pods.settings import PodSettings
from mapper.pods.usage import PodSample
from mapper.readings.normaliser import Readings
from mapper.runtime import Runtime
from mapper.sinks.prometheus.collector import MapperCollector

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = REPO / "tests" / "fixtures" / "jtop" / "agx-orin_jp5_built.json"


def runtime(attributor: Any) -> Runtime:
    """A runtime running the bundled Device twice, with the given attributor."""
    registry = DeviceRegistry("jetson")
    result = Runtime(registry, Controller(None, ControlConfig()), 1.0, attributor=attributor)
    models, devices = load_manifests([REPO / "device-model" / "jetson-model.yaml",
                                      REPO / "device-model" / "jetson-xavier.yaml"])
    result.upsert_model(model_from_pb(models[0]))
    device = device_from_pb(devices[0])
    plain = tuple(replace(p, desired=None) for p in device.properties)
    for name in ("first", "second"):
        result.upsert_device(replace(device, name=name, properties=plain))
    result.on_availability(True, "test")
    return result


def samples(registry: CollectorRegistry, prefix: str) -> list[tuple[str, dict[str, str], float]]:
    """Every sample of the families starting with `prefix`."""
    text = generate_latest(registry).decode()
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith(prefix)]


def gpu_pods_twin(run: Runtime, device: str = "first") -> str | None:
    """The reported gpu_pods twin of a device."""
    running = run.registry.device("default", device)
    assert running is not None
    return next((t.reported for t in run.twins(running) if t.property_name == "gpu_pods"), None)


def test_rows_per_device_and_the_twin_come_from_the_same_sample(tmp_path: Path) -> None:
    node = FakeNode(tmp_path)
    detector, tracker = Container("vision", "detector-0", "infer"), Container("vision", "tracker-0", "track")
    node.add_container(detector, 4242, gpu_kb=1048576)
    node.add(Process(2210, HOST_CGROUP_V2, 12288, name="gnome-shell"))
    run = runtime(PodAttributor(PodSettings(True, str(node.proc), str(node.containers), 20)))
    registry = CollectorRegistry()
    registry.register(MapperCollector(run, "node-a"))
    snapshot: dict[str, Any] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    assert samples(registry, "jetson_pod") == [] and gpu_pods_twin(run) is None  # nothing before a sample

    snapshot["processes"] = node.jtop_rows()
    run.on_sample(snapshot)
    gpu = {(s[1]["device"], s[1]["pod"]): s[2] for s in samples(registry, "jetson_pod_gpu_memory_bytes")}
    assert gpu == {("first", "detector-0"): 1048576 * 1024, ("second", "detector-0"): 1048576 * 1024,
                   ("first", ""): 12288 * 1024, ("second", ""): 12288 * 1024}
    assert gpu_pods_twin(run) == gpu_pods_twin(run, "second") == "vision/detector-0"

    node.add_container(tracker, 4343, gpu_kb=2097152)
    snapshot["processes"] = node.jtop_rows()
    run.on_sample(snapshot)
    assert gpu_pods_twin(run) == "vision/tracker-0,vision/detector-0"
    pods = {s[1]["pod"] for s in samples(registry, "jetson_pod_processes") if s[1]["device"] == "first"}
    assert pods == {"detector-0", "tracker-0", ""}
    lookups = {s[1]["result"]: s[2] for s in samples(registry, "jetson_mapper_pod_lookups_total")}
    assert (lookups["pod"], lookups["host"], lookups["vanished"]) == (3, 2, 0)

    run.on_availability(False, "jtop.service went")  # offline: board and pod series go, the counter stays
    assert samples(registry, "jetson_pod_") == [] and samples(registry, "jetson_mapper_pod_lookups_total")


def test_a_failing_attributor_costs_only_the_pod_figures(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[float] = []

    def broken(snapshot: Any, readings: Readings) -> PodSample:
        calls.append(1.0)
        raise RuntimeError("boom")

    run = runtime(broken)
    registry = CollectorRegistry()
    registry.register(MapperCollector(run, "node-a"))
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    run.on_sample(snapshot)
    run.on_sample(snapshot)
    assert len(calls) == 2 and run.pods is None
    assert samples(registry, "jetson_uptime_seconds") and not samples(registry, "jetson_pod")
    assert sum("pod attribution failed" in r.message for r in caplog.records if r.levelname == "ERROR") == 1


def test_without_the_attributor_nothing_of_pods_shows() -> None:
    run = runtime(None)
    registry = CollectorRegistry()
    registry.register(MapperCollector(run, "node-a"))
    run.on_sample(json.loads(SNAPSHOT.read_text(encoding="utf-8")))
    assert run.pods is None and gpu_pods_twin(run) is None
    assert not samples(registry, "jetson_pod") and not samples(registry, "jetson_mapper_pod")
