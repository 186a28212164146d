"""The mapper publishes every configured property to a real mosquitto and rides out a broker outage."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from mapper_process import DEVICE_MODEL, Emulator, Mapper, wait_until
from mosquitto import Mosquitto, Subscriber

pytestmark = [pytest.mark.jtop, pytest.mark.slow]

PUSHED = ("gpu_usage", "cpu_usage", "ram_used", "power_total", "gpu_temperature", "nvpmodel", "jetson_clocks",
          "fan_profile", "uptime")


def device_file(workdir: str, broker: Mosquitto) -> Path:
    """The bundled Device with 1 s cycles and a QoS 1 MQTT push on the properties under test."""
    device = yaml.safe_load((DEVICE_MODEL / "jetson-xavier.yaml").read_text())
    for prop in device["spec"]["properties"]:
        prop["collectCycle"] = prop["reportCycle"] = 1000
        prop.pop("pushMethod", None)
        if prop["name"] in PUSHED:
            prop["pushMethod"] = {"mqtt": {"address": broker.address, "topic": f"jm/xavier/{prop['name']}",
                                           "qos": 1, "retained": False}}
    path = Path(workdir, "device.yaml")
    path.write_text(yaml.safe_dump(device))
    return path


def published(mapper: Mapper, what: str) -> float:
    """A jetson_mapper_mqtt_* counter or gauge for the test broker, summed over brokers."""
    total = 0.0
    for line in mapper.get("/metrics")[1].splitlines():
        if re.match(rf"jetson_mapper_mqtt_{what}(_total)?{{", line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_every_property_arrives_and_an_outage_loses_nothing(workdir: str) -> None:
    """A subscriber gets every pushed property; QoS 1 messages made while the broker is down arrive after."""
    broker = Mosquitto(Path(workdir), persistence=True)
    broker.start()
    emulator = Emulator(workdir, interval=0.5).start()
    mapper = Mapper(workdir, {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": 0.5},
        "standalone": {"files": [str(DEVICE_MODEL / "jetson-model.yaml"), str(device_file(workdir, broker))]},
        "mqtt": {"queue_size": 500, "device_topic": "jm/{namespace}/{device}/all"},
    })
    subscriber = Subscriber(broker.port, "jm/#", client_id="edge-app", persistent=True)
    try:
        mapper.start()
        wait_until(lambda: all(subscriber.messages(f"jm/xavier/{p}") for p in PUSHED), timeout=30)
        for name in PUSHED:
            payload = json.loads(subscriber.messages(f"jm/xavier/{name}")[-1].payload)
            assert payload["device"] == "jetson-xavier" and payload["namespace"] == "default"
            assert payload["property"] == name and payload["value"] is not None and payload["type"]
        nvpmodel = json.loads(subscriber.messages("jm/xavier/nvpmodel")[-1].payload)
        assert nvpmodel["value"] == "MODE_20W_6CORE" and nvpmodel["type"] == "STRING"
        clocks = json.loads(subscriber.messages("jm/xavier/jetson_clocks")[-1].payload)
        assert clocks["value"] is False and clocks["type"] == "BOOLEAN"
        wait_until(lambda: subscriber.messages("jm/default/jetson-xavier/all"), timeout=10)
        whole = json.loads(subscriber.messages("jm/default/jetson-xavier/all")[-1].payload)
        assert whole["device"] == "jetson-xavier" and len(whole["properties"]) >= 20
        assert whole["properties"]["nvpmodel"] == {"value": "MODE_20W_6CORE", "type": "STRING"}

        broker.stop()
        outage_start = time.time() * 1000
        wait_until(lambda: published(mapper, "queued") >= 3 * len(PUSHED), timeout=30)
        outage_end = time.time() * 1000
        queued = published(mapper, "queued")
        before = published(mapper, "published")
        broker.start()
        wait_until(lambda: published(mapper, "queued") == 0, timeout=60)
        assert published(mapper, "published") >= before + queued
        assert published(mapper, "dropped") == 0

        def during_outage() -> list[dict[str, object]]:
            got = [json.loads(m.payload) for m in subscriber.messages() if m.topic.startswith("jm/xavier/")]
            return [p for p in got if outage_start <= float(str(p["timestamp"])) <= outage_end]

        wait_until(lambda: len(during_outage()) >= queued - len(PUSHED), timeout=30)
        arrived = {str(p["property"]) for p in during_outage()}
        assert arrived == set(PUSHED)
        mapper.alive_or_fail()
    finally:
        subscriber.close()
        mapper.stop()
        emulator.stop()
        broker.stop()
