"""The `datapanel:` config section: defaults, per-sink queues, the HTTP body, credentials from env or files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mapper.config import ConfigError, parse_config
from mapper.sinks.panel_settings import parse_panel_settings


def test_defaults() -> None:
    settings, problems = parse_panel_settings(None, {})
    assert problems == []
    assert settings.http_body == "form" and settings.timeout == 5.0
    assert {name: settings.queue(name).size for name in ("http", "otel", "influxdb2", "redis", "mysql")} == \
        dict.fromkeys(("http", "otel", "influxdb2", "redis", "mysql"), 1000)
    assert settings.queue("http").batch == 1 and settings.queue("mysql").batch == 500
    assert (settings.influx_token, settings.redis_password, settings.mysql_password) == (None, None, None)


def test_queue_sizes_backoff_and_body(tmp_path: Path) -> None:
    raw = {"queue_size": 50, "backoff_initial": 0.5, "backoff_max": 4, "timeout": 2,
           "http": {"body": "json", "queue_size": 7}, "redis": {"queue_size": 9}}
    settings, problems = parse_panel_settings(raw, {})
    assert problems == []
    assert settings.http_body == "json" and settings.timeout == 2.0
    assert (settings.queue("http").size, settings.queue("redis").size, settings.queue("otel").size) == (7, 9, 50)
    assert (settings.queue("otel").backoff_initial, settings.queue("otel").backoff_max) == (0.5, 4.0)


def test_credentials_come_from_the_environment_as_upstream_or_from_files_that_win(tmp_path: Path) -> None:
    env = {"TOKEN": "env-token", "PASSWORD": "env-password"}
    settings, _ = parse_panel_settings({}, env)
    assert (settings.influx_token, settings.redis_password, settings.mysql_password) == \
        ("env-token", "env-password", "env-password")
    (tmp_path / "redis").write_text("redis-file\n")
    (tmp_path / "mysql").write_text("mysql-file")
    settings, problems = parse_panel_settings({"redis": {"password_file": str(tmp_path / "redis")},
                                               "mysql": {"password_file": str(tmp_path / "mysql")}}, env)
    assert problems == []
    assert (settings.influx_token, settings.redis_password, settings.mysql_password) == \
        ("env-token", "redis-file", "mysql-file")
    assert "redis-file" not in repr(settings) and "env-token" not in repr(settings)


@pytest.mark.parametrize(("raw", "problem"), [
    ({"queue_sise": 5}, "datapanel.queue_sise: unknown key; did you mean 'queue_size'?"),
    ({"http": {"body": "xml"}}, "datapanel.http.body: must be one of form, json, got 'xml'"),
    ({"http": {"token_file": "/x"}}, "datapanel.http.token_file: unknown key"),
    ({"timeout": float("inf")}, "datapanel.timeout: must be a number > 0, got inf"),
    ({"backoff_max": float("nan")}, "datapanel.backoff_max: must be a number > 0, got nan"),
    ({"queue_size": 0}, "datapanel.queue_size: must be an integer >= 1, got 0"),
    ({"redis": {"queue_size": 2.5}}, "datapanel.redis.queue_size: must be an integer >= 1"),
    ({"backoff_initial": 5, "backoff_max": 1}, "datapanel.backoff_max: (1) must not be smaller"),
    ({"timeout": 0}, "datapanel.timeout: must be a number > 0, got 0"),
    ({"timeout": 1e300}, "datapanel.timeout: must be at most 3600 seconds, got 1e+300"),
    ({"backoff_max": 3601}, "datapanel.backoff_max: must be at most 3600 seconds, got 3601"),
    ({"influxdb2": {"token_file": "/nonexistent/token"}}, "datapanel.influxdb2.token_file: cannot read"),
    ({"mysql": []}, "datapanel.mysql: must be a mapping"),
])
def test_bad_settings_are_named(raw: object, problem: str) -> None:
    _, problems = parse_panel_settings(raw, {})
    assert any(p.startswith(problem) for p in problems), problems


def test_the_section_is_part_of_the_mapper_config(tmp_path: Path) -> None:
    config = parse_config({"datapanel": {"http": {"body": "json"}}}, tmp_path, {"PASSWORD": "pw"})
    assert config.datapanel.http_body == "json" and config.datapanel.redis_password == "pw"
    with pytest.raises(ConfigError, match=r"datapanel\.http\.body"):
        parse_config({"datapanel": {"http": {"body": 1}}}, tmp_path, {})
