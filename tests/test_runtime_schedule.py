"""The pacing loop sleeps until something is due: no wake-ups while nothing is, a prompt one when a device comes."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from common import wait_until

from mapper.config import MapperConfig
from mapper.control.controller import Controller
from mapper.devices.model import Device
from mapper.devices.registry import DeviceRegistry, RunningDevice
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.dmi.manifests import load_manifests
from mapper.runtime import MAX_SLEEP, Runtime
from mapper.sinks.base import Delivery, Route, RuntimeView, Sink

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = json.loads((REPO / "tests" / "fixtures" / "jtop" / "agx-orin_jp5_built.json").read_text(encoding="utf-8"))


class Recording(Sink):
    """Delivers gpu_usage every `cycle` seconds and counts the loop's steps."""

    name = "recording"

    def __init__(self, cycle: float) -> None:
        self.cycle = cycle
        self.deliveries: list[tuple[str, float]] = []
        self.steps = 0
        self.lock = threading.Lock()

    def routes(self, running: RunningDevice) -> Sequence[Route]:
        return [Route("gpu", self.cycle, tuple(p for p in running.properties if p.name == "gpu_usage"))]

    def deliver(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append((delivery.device.key[1], delivery.timestamp))

    def tick(self, now: float, view: RuntimeView) -> float | None:
        with self.lock:
            self.steps += 1
        return None


def device_named(name: str) -> Device:
    _, devices = load_manifests([REPO / "device-model" / "jetson-model.yaml",
                                 REPO / "device-model" / "jetson-xavier.yaml"])
    device = device_from_pb(devices[0])
    return replace(device, name=name, properties=tuple(replace(p, desired=None) for p in device.properties))


def runtime_with(sink: Sink, clock: list[float] | None = None) -> Runtime:
    kwargs = {"clock": lambda: clock[0]} if clock is not None else {}
    runtime = Runtime(DeviceRegistry("jetson"), Controller(None, MapperConfig().control), 1.0, sinks=[sink], **kwargs)
    models, _ = load_manifests([REPO / "device-model" / "jetson-model.yaml"])
    runtime.upsert_model(model_from_pb(models[0]))
    return runtime


def test_tick_says_when_the_next_route_is_due() -> None:
    clock = [100.0]
    sink = Recording(cycle=7.0)
    runtime = runtime_with(sink, clock)
    runtime.upsert_device(device_named("a"))
    assert runtime.tick() == 100.0 + MAX_SLEEP, "before the first sample nothing is due"
    runtime.on_availability(True, "test")
    runtime.on_sample({**SNAPSHOT, "time": 1.0})
    assert runtime.tick() == 107.0 and len(sink.deliveries) == 1
    clock[0] = 103.0
    assert runtime.tick() == 107.0 and len(sink.deliveries) == 1
    clock[0] = 107.0
    assert runtime.tick() == 114.0 and len(sink.deliveries) == 2


def test_the_loop_sleeps_while_nothing_is_due_and_wakes_for_a_new_device() -> None:
    sink = Recording(cycle=30.0)
    runtime = runtime_with(sink)
    runtime.on_availability(True, "test")
    runtime.on_sample({**SNAPSHOT, "time": 1.0})
    runtime.upsert_device(device_named("a"))
    runtime.start()
    try:
        wait_until(lambda: len(sink.deliveries) == 1, "the first delivery")
        with sink.lock:
            steps_before = sink.steps
        threading.Event().wait(1.5)
        with sink.lock:
            assert sink.steps == steps_before, "the loop woke although nothing was due"
        runtime.upsert_device(device_named("b"))  # the loop sleeps up to MAX_SLEEP: only a wake-up is this fast
        wait_until(lambda: ("b", 1.0) in sink.deliveries, "the new device's first delivery", timeout=MAX_SLEEP / 2)
    finally:
        runtime.stop()
