"""Credentials written into addresses never reach a log line, a metric label, an error text or a REST answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from http_support import DEVICE_FILES, get, http_app, port_of

from mapper.sinks.mqtt.client import MqttPublisher
from mapper.sinks.mqtt.settings import MqttSettings

SECRET = "S3cret"
ADDRESS = f"tcp://user:{SECRET}@127.0.0.1:1883"
SNAPSHOT = Path(__file__).resolve().parent / "fixtures" / "jtop" / "xavier-nx_jp5_built.json"


def test_the_publisher_never_shows_the_password(caplog: pytest.LogCaptureFixture) -> None:
    publisher = MqttPublisher(MqttSettings(), "node")
    try:
        for _ in range(3):
            publisher.publish(ADDRESS, "t", b"x", 1, False)
        stats = publisher.broker_stats()
    finally:
        publisher.close()
    assert list(stats) == ["tcp://***@127.0.0.1:1883"]
    (broken,) = stats.values()
    assert broken.dropped == 3 and SECRET not in broken.last_error
    assert "cannot be used" in caplog.text and SECRET not in caplog.text


def test_metrics_and_logs_of_a_mapper_with_such_an_address_hide_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    device = DEVICE_FILES[1].read_text(encoding="utf-8").replace("tcp://127.0.0.1:1883", ADDRESS)
    assert SECRET in device
    (tmp_path / "device.yaml").write_text(device, encoding="utf-8")
    with http_app(tmp_path, files=(DEVICE_FILES[0], tmp_path / "device.yaml")) as app:
        app.runtime.on_availability(True, "test sample")
        app.runtime.on_sample({**json.loads(SNAPSHOT.read_text(encoding="utf-8")), "time": 1.7e9})
        app.runtime.tick()
        status, _, page = get(port_of(app), "/metrics")
    assert status == 200
    assert 'jetson_mapper_mqtt_dropped_total{broker="tcp://***@127.0.0.1:1883"' in page.decode()
    assert SECRET.encode() not in page
    assert "cannot be used" in caplog.text and SECRET not in caplog.text


def test_the_cli_log_format_masks_whatever_a_line_carries() -> None:
    code = ("import logging; from mapper.cli import _setup_logging; _setup_logging('INFO'); "
            f"logging.getLogger('x').error('pushing to %s failed', 'https://h/w?token={SECRET}'); "
            f"logging.getLogger('x').warning('redis at redis://:{SECRET}@h:6379 gone')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "token=***" in result.stderr and "redis://***@h:6379" in result.stderr
    assert SECRET not in result.stderr
