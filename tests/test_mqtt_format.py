"""Broker addresses, topics and JSON payloads of the MQTT output."""

from __future__ import annotations

import json
import math

import pytest

from mapper.sinks.mqtt.format import (
    canonical_address,
    device_payload,
    normalise_address,
    property_payload,
    topic_problem,
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://broker:1883", ("broker", 1883, False)),
        ("mqtt://broker", ("broker", 1883, False)),
        ("ssl://broker:8884", ("broker", 8884, True)),
        ("mqtts://broker", ("broker", 8883, True)),
        ("TLS://broker/", ("broker", 8883, True)),
        ("broker:1884", ("broker", 1884, False)),
        ("broker:8883", ("broker", 8883, True)),
        ("broker", ("broker", 1883, False)),
        (" 127.0.0.1:1883 ", ("127.0.0.1", 1883, False)),
        ("tcp://[::1]:1883", ("::1", 1883, False)),
        ("[fe80::1]", ("fe80::1", 1883, False)),
        ("::1", ("::1", 1883, False)),
    ],
)
def test_addresses_normalise(address: str, expected: tuple[str, int, bool]) -> None:
    assert normalise_address(address) == expected


@pytest.mark.parametrize(
    ("address", "complaint"),
    [
        ("", "empty"),
        ("tcp://", "no host"),
        ("tcp://h:0", "port"),
        ("tcp://h:70000", "port"),
        ("h:abc", "port"),
        ("ws://h:80", "scheme"),
        ("tcp://user:pw@h:1883", "credentials"),
        ("tcp://h:1883/path", "scheme://host:port"),
        ("tcp://[::1", "IPv6"),
    ],
)
def test_bad_addresses_say_why(address: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("/", ".")):
        normalise_address(address)


def test_canonical_address_is_one_spelling_per_endpoint() -> None:
    spellings = ["tcp://localhost:1883", "mqtt://localhost", "localhost", "localhost:1883"]
    assert {canonical_address(*normalise_address(a)) for a in spellings} == {"tcp://localhost:1883"}
    assert canonical_address("::1", 8883, True) == "ssl://[::1]:8883"


@pytest.mark.parametrize("topic", ["", "a/+/b", "a/#", "a\x00b"])
def test_unpublishable_topics_are_named(topic: str) -> None:
    assert topic_problem(topic) is not None


def test_normal_topics_pass() -> None:
    assert topic_problem("jetson/default/xavier/gpu_usage") is None


def test_property_payload_keeps_json_types_and_millisecond_timestamp() -> None:
    for value in (1.5, 7, True, False, "MAXN"):
        document = json.loads(property_payload("ns", "dev", "p", value, "T", 1700000000.1234))
        assert document == {
            "device": "dev",
            "namespace": "ns",
            "property": "p",
            "value": value,
            "type": "T",
            "timestamp": 1700000000123,
        }
        assert type(document["value"]) is type(value)


def test_non_finite_numbers_become_null_so_the_payload_stays_json() -> None:
    for value in (math.nan, math.inf, -math.inf):
        text = property_payload("ns", "dev", "p", value, "FLOAT", 0).decode()
        assert json.loads(text)["value"] is None
        assert "NaN" not in text and "Infinity" not in text


def test_device_payload_carries_every_property() -> None:
    document = json.loads(device_payload("ns", "dev", {"a": (1, "INT"), "b": ("x", "STRING")}, 2.0))
    assert document == {
        "device": "dev",
        "namespace": "ns",
        "timestamp": 2000,
        "properties": {"a": {"value": 1, "type": "INT"}, "b": {"value": "x", "type": "STRING"}},
    }
