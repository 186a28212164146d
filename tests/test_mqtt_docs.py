"""docs/mqtt.md stays in step with the code: payload fields, config keys, environment variables, default topics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from mapper.sinks.mqtt import settings as mqtt_settings
from mapper.sinks.mqtt.format import device_payload, property_payload
from mapper.sinks.mqtt.settings import MqttSettings, parse_mqtt_settings

DOC = (Path(__file__).resolve().parents[1] / "docs" / "mqtt.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of one `## title` section."""
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 1)
    return DOC[start: end if end != -1 else len(DOC)]


def test_payload_fields_table_matches_the_payload() -> None:
    """Every field the code sends is in the table, and nothing else is."""
    documented = set(re.findall(r"^\| `(\w+)`\s+\|", section("Payload"), re.M))
    sent = set(json.loads(property_payload("default", "jetson-xavier", "gpu_usage", 42.5, "FLOAT", 1.0)))
    assert documented == sent


def test_payload_examples_are_what_the_code_sends() -> None:
    """The JSON examples in the doc parse and have exactly the keys the code produces."""
    examples = [json.loads(block.replace("\n", "")) for block in re.findall(r"```json\n(.*?)```", DOC, re.S)]
    prop = json.loads(property_payload("default", "d", "p", 1, "INT", 1.0))
    device = json.loads(device_payload("default", "d", {"p": (1, "INT")}, 1.0))
    assert [set(e) for e in examples] == [set(prop), set(device)]
    assert set(examples[1]["properties"]["gpu_usage"]) == set(device["properties"]["p"])


def test_config_example_is_complete_and_valid() -> None:
    """The documented `mqtt:` example names every known key and only known keys, and parses once files exist."""
    block = re.search(r"```yaml\n(mqtt:.*?)```", section("Configuration"), re.S)
    assert block is not None
    raw = yaml.safe_load(block.group(1))["mqtt"]
    documented = set(raw) | {"username", "password"}  # the inline alternatives are named in comments
    assert documented == set(mqtt_settings._KNOWN_KEYS)
    assert set(raw["tls"]) == set(mqtt_settings._TLS_KEYS)
    raw = {k: v for k, v in raw.items() if not k.endswith("_file") and k != "tls"}
    settings, problems = parse_mqtt_settings(raw, {})
    assert problems == []
    assert settings.device_topic_for("default", "jetson-xavier") == "jetson-mapper/default/jetson-xavier/properties"


def test_environment_variables_and_default_status_topic_are_the_real_ones() -> None:
    """The env vars the doc names set the credentials; the documented default status topic is the default."""
    for var in re.findall(r"JETSON_MAPPER_MQTT_\w+", DOC):
        settings, _ = parse_mqtt_settings({}, {"JETSON_MAPPER_MQTT_USERNAME": "u", var: "x"})
        assert "x" in (settings.username, settings.password), var
    assert f"default `{MqttSettings().status_topic}`" in DOC
