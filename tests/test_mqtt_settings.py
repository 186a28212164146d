"""The `mqtt:` config section: defaults, credentials from env / files / inline, TLS files, problems."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mapper.sinks.mqtt.settings import MqttSettings, TlsSettings, parse_mqtt_settings


def test_empty_section_gives_defaults() -> None:
    assert parse_mqtt_settings({}, {}) == (MqttSettings(), [])


def test_every_key_is_read() -> None:
    raw = {
        "client_id_prefix": "jm",
        "username": "u",
        "password": "p",
        "keepalive": 10,
        "queue_size": 0,
        "status_topic": "s/{node}",
        "device_topic": "d/{namespace}/{device}",
        "backoff_initial": 0.5,
        "backoff_max": 60,
    }
    settings, problems = parse_mqtt_settings(raw, {})
    assert problems == []
    assert settings == MqttSettings("jm", "u", "p", None, 10, 0, "s/{node}", "d/{namespace}/{device}", 0.5, 60.0)
    assert settings.status_topic_for("n1") == "s/n1"
    assert settings.device_topic_for("ns", "dev") == "d/ns/dev"


def test_empty_status_topic_disables_status_and_no_device_topic_by_default() -> None:
    settings, problems = parse_mqtt_settings({"status_topic": ""}, {})
    assert problems == []
    assert settings.status_topic_for("n") is None
    assert settings.device_topic_for("ns", "d") is None


def test_credentials_from_mounted_files_lose_their_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "user").write_text("edge\n")
    (tmp_path / "pass").write_text("s3cret\r\n")
    raw = {"username_file": str(tmp_path / "user"), "password_file": str(tmp_path / "pass"), "username": "x"}
    settings, problems = parse_mqtt_settings(raw, {})
    assert problems == []
    assert (settings.username, settings.password) == ("edge", "s3cret")


def test_environment_wins_over_files_and_inline(tmp_path: Path) -> None:
    (tmp_path / "pass").write_text("from-file")
    env = {"JETSON_MAPPER_MQTT_USERNAME": "env-user", "JETSON_MAPPER_MQTT_PASSWORD": "env-pass"}
    raw = {"username": "inline", "password_file": str(tmp_path / "pass")}
    settings, problems = parse_mqtt_settings(raw, env)
    assert problems == []
    assert (settings.username, settings.password) == ("env-user", "env-pass")


def test_unreadable_secret_file_is_a_problem() -> None:
    settings, problems = parse_mqtt_settings({"username": "u", "password_file": "/nonexistent/pw"}, {})
    assert settings.password is None
    assert len(problems) == 1 and problems[0].startswith("mqtt.password_file: cannot read /nonexistent/pw")


def test_password_without_username_is_a_problem() -> None:
    _, problems = parse_mqtt_settings({"password": "p"}, {})
    assert len(problems) == 1 and problems[0].startswith("mqtt.password:")


def test_tls_files_must_exist(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("x")
    settings, problems = parse_mqtt_settings({"tls": {"ca_file": str(ca), "insecure": True}}, {})
    assert problems == []
    assert settings.tls == TlsSettings(str(ca), None, None, True)
    _, problems = parse_mqtt_settings({"tls": {"ca_file": "/x", "cert_file": "/c", "key_file": "/k"}}, {})
    assert problems == [
        "mqtt.tls.ca_file: /x does not exist.",
        "mqtt.tls.cert_file: /c does not exist.",
        "mqtt.tls.key_file: /k does not exist.",
    ]


def test_tls_cert_needs_its_key(tmp_path: Path) -> None:
    cert = tmp_path / "c.crt"
    cert.write_text("x")
    _, problems = parse_mqtt_settings({"tls": {"cert_file": str(cert), "colour": 1}}, {})
    assert problems == [
        "mqtt.tls.colour: unknown key (known: ca_file, cert_file, insecure, key_file).",
        "mqtt.tls: cert_file and key_file must be given together.",
    ]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"keepalive": "30"}, "mqtt.keepalive:"),
        ({"keepalive": 0}, "mqtt.keepalive:"),
        ({"queue_size": -1}, "mqtt.queue_size:"),
        ({"queue_size": True}, "mqtt.queue_size:"),
        ({"backoff_initial": 0}, "mqtt.backoff_initial:"),
        ({"backoff_initial": 10, "backoff_max": 5}, "mqtt.backoff_max:"),
        ({"device_topic": "x/{model}"}, "mqtt.device_topic:"),
        ({"status_topic": "x/+/{node}"}, "mqtt.status_topic:"),
        ({"status_topic": 5}, "mqtt.status_topic:"),
        ({"tls": "yes"}, "mqtt.tls:"),
        ({"tls": {"insecure": "yes"}}, "mqtt.tls.insecure:"),
        ({"username": 42}, "mqtt.username:"),
        ({"client_id_prefix": ""}, "mqtt.client_id_prefix:"),
        ({"brokers": []}, "mqtt.brokers:"),
        ({"usrname": "u"}, "mqtt.usrname: unknown key; did you mean 'username'?"),
        ({"backoff_max": float("inf")}, "mqtt.backoff_max:"),
    ],
)
def test_bad_values_are_one_sentence_each_and_fall_back_to_defaults(raw: dict[str, Any], key: str) -> None:
    settings, problems = parse_mqtt_settings(raw, {})
    assert len(problems) == 1 and problems[0].startswith(key) and problems[0][-1] in ".?"
    assert isinstance(settings, MqttSettings)
    assert settings.backoff_max >= settings.backoff_initial


def test_a_section_that_is_not_a_mapping_is_a_problem_not_a_crash() -> None:
    settings, problems = parse_mqtt_settings(["tcp://x"], {})  # type: ignore[arg-type]
    assert settings == MqttSettings()
    assert problems == ["mqtt: must be a mapping."]
