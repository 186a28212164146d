"""Data-panel settings: the `datapanel:` config section (queues, retries, the HTTP body, database credentials).

Credentials follow mapper-framework: the InfluxDB token from env `TOKEN`, the Redis and MySQL password from env
`PASSWORD`; a file named in this section (a mounted Secret) wins over the environment, so Redis and MySQL can
have different passwords. They are read once at start and never shown in a log line, label or error text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mapper.sections.reader import MAX_SECONDS, as_sentence, unknown_keys
from mapper.sinks.queue import QueueSettings

TOKEN_ENV = "TOKEN"
PASSWORD_ENV = "PASSWORD"
HTTP_BODIES = ("form", "json")
SINKS = ("http", "otel", "influxdb2", "redis", "mysql")
BATCHES = {"http": 1, "otel": 500, "influxdb2": 500, "redis": 500, "mysql": 500}

_TOP_KEYS = frozenset({"queue_size", "backoff_initial", "backoff_max", "timeout", *SINKS})
_SINK_KEYS: dict[str, frozenset[str]] = {
    "http": frozenset({"queue_size", "body"}),
    "otel": frozenset({"queue_size"}),
    "influxdb2": frozenset({"queue_size", "token_file"}),
    "redis": frozenset({"queue_size", "password_file"}),
    "mysql": frozenset({"queue_size", "password_file"}),
}


@dataclass(frozen=True)
class PanelSettings:
    """How the data-panel sinks queue, retry and authenticate."""

    queues: Mapping[str, QueueSettings] = field(default_factory=lambda: {
        name: QueueSettings(batch=BATCHES[name]) for name in SINKS})
    timeout: float = 5.0  # seconds per database or OTLP request (HTTP push: the Device's timeout)
    http_body: str = "form"
    influx_token: str | None = field(default=None, repr=False)
    redis_password: str | None = field(default=None, repr=False)
    mysql_password: str | None = field(default=None, repr=False)

    def queue(self, sink: str) -> QueueSettings:
        """The queue settings of one sink."""
        return self.queues.get(sink) or QueueSettings(batch=BATCHES.get(sink, 100))


class _Reader:
    """Reads one mapping of the section, collecting problems as `datapanel.<path>: ...` sentences."""

    def __init__(self, raw: Any, path: str, keys: frozenset[str], problems: list[str]) -> None:
        self.path, self.problems = path, problems
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            problems.append(f"{path}: must be a mapping, got {type(raw).__name__}.")
            raw = {}
        self.raw: Mapping[str, Any] = raw
        for key, message in unknown_keys(raw, keys):
            problems.append(f"{path}.{key}: {as_sentence(message)}")

    def number(self, key: str, default: float, integer: bool = False, minimum: float = 0.0) -> Any:
        """A number >= minimum (an integer when asked), else the default with a problem."""
        value = self.raw.get(key)
        if value is None:
            return default
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value < minimum or (
                not integer and value <= 0):
            rule = f"an integer >= {minimum:g}" if integer else "a number > 0"
            self.problems.append(f"{self.path}.{key}: must be {rule}, got {value!r}.")
            return default
        return value

    def seconds(self, key: str, default: float) -> float:
        """A duration: a number > 0 and at most MAX_SECONDS, else the default with a problem."""
        value = float(self.number(key, default))
        if value > MAX_SECONDS:
            self.problems.append(f"{self.path}.{key}: must be at most {MAX_SECONDS:g} seconds, got {value:g}.")
            return default
        return value

    def secret(self, key: str, env: Mapping[str, str], env_name: str) -> str | None:
        """The contents of the file named by `key`, else env `env_name`, else None."""
        path = self.raw.get(key)
        if path is None:
            return env.get(env_name) or None
        if not isinstance(path, str) or not path:
            self.problems.append(f"{self.path}.{key}: must be a file path (string).")
            return None
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().rstrip("\r\n")
        except OSError as error:
            self.problems.append(f"{self.path}.{key}: cannot read {path}: {error.strerror or error}.")
            return None


def parse_panel_settings(raw: Any, env: Mapping[str, str]) -> tuple[PanelSettings, list[str]]:
    """Settings from the `datapanel:` section and the environment, plus every problem found (never raises)."""
    problems: list[str] = []
    top = _Reader(raw, "datapanel", _TOP_KEYS, problems)
    base = QueueSettings(
        size=top.number("queue_size", QueueSettings.size, integer=True, minimum=1),
        backoff_initial=top.seconds("backoff_initial", QueueSettings.backoff_initial),
        backoff_max=top.seconds("backoff_max", QueueSettings.backoff_max),
    )
    if base.backoff_max < base.backoff_initial:
        problems.append(f"datapanel.backoff_max: ({base.backoff_max:g}) must not be smaller than "
                        f"backoff_initial ({base.backoff_initial:g}).")
        base = replace(base, backoff_max=base.backoff_initial)
    timeout = top.seconds("timeout", PanelSettings.timeout)
    readers = {name: _Reader(top.raw.get(name), f"datapanel.{name}", _SINK_KEYS[name], problems) for name in SINKS}
    queues = {name: replace(base, size=reader.number("queue_size", base.size, integer=True, minimum=1),
                            batch=BATCHES[name])
              for name, reader in readers.items()}
    body = readers["http"].raw.get("body", "form")
    if body not in HTTP_BODIES:
        problems.append(f"datapanel.http.body: must be one of {', '.join(HTTP_BODIES)}, got {body!r}.")
        body = "form"
    settings = PanelSettings(
        queues=queues, timeout=timeout, http_body=body,
        influx_token=readers["influxdb2"].secret("token_file", env, TOKEN_ENV),
        redis_password=readers["redis"].secret("password_file", env, PASSWORD_ENV),
        mysql_password=readers["mysql"].secret("password_file", env, PASSWORD_ENV),
    )
    return settings, problems
