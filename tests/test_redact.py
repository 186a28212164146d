"""redact(): credentials in addresses are masked wherever an address is shown."""

from __future__ import annotations

import pytest

from mapper.devices.redact import redact


@pytest.mark.parametrize(("text", "shown"), [
    ("tcp://user:S3cret@host:1883", "tcp://***@host:1883"),
    ("MQTT broker 'tcp://u:p@10.0.0.1:1883' cannot be used", "MQTT broker 'tcp://***@10.0.0.1:1883' cannot be used"),
    ("https://token@influx:8086/api/v2/write", "https://***@influx:8086/api/v2/write"),
    ("redis://:pw@localhost:6379/0", "redis://***@localhost:6379/0"),
    ("admin:hunter2@db.local:3306", "***@db.local:3306"),
    ("http://h/push?token=abc&x=1", "http://h/push?token=***&x=1"),
    ("http://h/push?x=1&Password=abc", "http://h/push?x=1&Password=***"),
    ("http://h/push?api-key=abc#frag", "http://h/push?api-key=***#frag"),
])
def test_credentials_are_masked(text: str, shown: str) -> None:
    assert redact(text) == shown


@pytest.mark.parametrize("text", [
    "tcp://127.0.0.1:1883", "ssl://[::1]:8883", "http://h:8080/push?device=a&property=b", "jetson/default/x",
    "device default/jetson-xavier: nvpmodel: unknown power mode", "user@example", "",
])
def test_text_without_credentials_is_unchanged(text: str) -> None:
    assert redact(text) == text
