"""MQTT publisher settings: the `mqtt:` config section, credentials from env or mounted files, TLS files."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mapper.sections.reader import MAX_SECONDS, as_sentence, unknown_keys

USERNAME_ENV = "JETSON_MAPPER_MQTT_USERNAME"
PASSWORD_ENV = "JETSON_MAPPER_MQTT_PASSWORD"

_KNOWN_KEYS = frozenset(
    {
        "client_id_prefix",
        "username",
        "password",
        "username_file",
        "password_file",
        "tls",
        "keepalive",
        "queue_size",
        "status_topic",
        "device_topic",
        "backoff_initial",
        "backoff_max",
    }
)
_TLS_KEYS = frozenset({"ca_file", "cert_file", "key_file", "insecure"})


@dataclass(frozen=True)
class TlsSettings:
    """Files for a TLS connection to the broker; None means the system default (CA) or no client cert."""

    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    insecure: bool = False


@dataclass(frozen=True)
class MqttSettings:
    """How the mapper talks to every MQTT broker named by Device properties."""

    client_id_prefix: str = "jetson-mapper"
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None
    keepalive: int = 30
    queue_size: int = 1000
    status_topic: str = "jetson-mapper/{node}/status"
    device_topic: str | None = None
    backoff_initial: float = 1.0
    backoff_max: float = 30.0

    def status_topic_for(self, node: str) -> str | None:
        """The retained online/offline topic for this node; None when disabled (empty string)."""
        return self.status_topic.format(node=node) if self.status_topic else None

    def device_topic_for(self, namespace: str, device: str, node: str = "") -> str | None:
        """The per-cycle all-properties topic of one device; None when not configured."""
        if not self.device_topic:
            return None
        return self.device_topic.format(namespace=namespace, device=device, node=node)


class _Problems:
    """Collects problem sentences while reading the raw section."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        """Record one problem about `mqtt.<key>`."""
        self.items.append(f"mqtt.{key}: {message}")


def _read_secret_file(key: str, path: object, problems: _Problems) -> str | None:
    """Contents of a mounted Secret file without its trailing newline, or None with a problem."""
    if not isinstance(path, str) or not path:
        problems.add(key, "must be a file path (string).")
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().rstrip("\r\n")
    except OSError as error:
        problems.add(key, f"cannot read {path}: {error.strerror or error}.")
        return None


def _credential(
    name: str, raw: Mapping[str, Any], env: Mapping[str, str], env_name: str, problems: _Problems
) -> str | None:
    """One credential: environment variable, else `<name>_file`, else inline `<name>`."""
    from_env = env.get(env_name)
    if from_env:
        return from_env
    if raw.get(f"{name}_file") is not None:
        return _read_secret_file(f"{name}_file", raw[f"{name}_file"], problems)
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(name, "must be a string.")
        return None
    return value


def _tls(raw: object, problems: _Problems) -> TlsSettings | None:
    """The `tls:` subsection; every named file must exist."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add("tls", "must be a mapping with ca_file, cert_file, key_file, insecure.")
        return None
    for key, message in unknown_keys(raw, _TLS_KEYS):
        problems.add(f"tls.{key}", as_sentence(message))
    files: dict[str, str | None] = {}
    for key in ("ca_file", "cert_file", "key_file"):
        path = raw.get(key)
        if path is None:
            files[key] = None
        elif not isinstance(path, str) or not path:
            problems.add(f"tls.{key}", "must be a file path (string).")
            files[key] = None
        else:
            if not os.path.isfile(path):
                problems.add(f"tls.{key}", f"{path} does not exist.")
            files[key] = path
    if (files["cert_file"] is None) != (files["key_file"] is None):
        problems.add("tls", "cert_file and key_file must be given together.")
    insecure = raw.get("insecure", False)
    if not isinstance(insecure, bool):
        problems.add("tls.insecure", "must be true or false.")
        insecure = False
    return TlsSettings(files["ca_file"], files["cert_file"], files["key_file"], insecure)


def _typed(
    raw: Mapping[str, Any],
    key: str,
    default: Any,
    check: Callable[[Any], bool],
    rule: str,
    problems: _Problems,
) -> Any:
    """`raw[key]` when present and valid, else the default (recording a problem when invalid)."""
    if key not in raw or raw[key] is None:
        return default
    value = raw[key]
    if isinstance(value, bool) or not check(value):
        problems.add(key, f"{rule}, got {value!r}.")
        return default
    return value


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and value > 0


def _is_non_negative_int(value: Any) -> bool:
    return isinstance(value, int) and value >= 0


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and 0 < value <= MAX_SECONDS


def _template(
    raw: Mapping[str, Any], key: str, default: str | None, fields: frozenset[str], problems: _Problems
) -> Any:
    """A topic template that may only use the named `{placeholders}`."""
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        problems.add(key, f"must be a string, got {value!r}.")
        return default
    try:
        value.format(**{name: "x" for name in fields})
    except (KeyError, IndexError, ValueError):
        allowed = ", ".join("{" + name + "}" for name in sorted(fields))
        problems.add(key, f"{value!r} may only use the placeholders {allowed}.")
        return default
    if "+" in value or "#" in value:
        problems.add(key, f"{value!r} must not contain MQTT wildcards (+ or #).")
        return default
    return value


def parse_mqtt_settings(raw: Mapping[str, Any], env: Mapping[str, str]) -> tuple[MqttSettings, list[str]]:
    """Settings from the `mqtt:` section and the environment, plus every problem found (never raises)."""
    problems = _Problems()
    if not isinstance(raw, Mapping):
        problems.items.append("mqtt: must be a mapping.")
        raw = {}
    for key, message in unknown_keys(raw, _KNOWN_KEYS):
        problems.add(key, as_sentence(message))
    defaults = MqttSettings()
    username = _credential("username", raw, env, USERNAME_ENV, problems)
    password = _credential("password", raw, env, PASSWORD_ENV, problems)
    if password is not None and username is None:
        problems.add("password", "is set but no username is: MQTT sends a password only with a username.")
    prefix = _typed(
        raw,
        "client_id_prefix",
        defaults.client_id_prefix,
        lambda v: isinstance(v, str) and v != "",
        "must be a non-empty string",
        problems,
    )
    keepalive = _typed(
        raw, "keepalive", defaults.keepalive, _is_positive_int, "must be a positive integer (s)", problems
    )
    queue_size = _typed(
        raw, "queue_size", defaults.queue_size, _is_non_negative_int, "must be an integer >= 0", problems
    )
    backoff_initial = _typed(
        raw,
        "backoff_initial",
        defaults.backoff_initial,
        _is_positive_number,
        f"must be a positive number of seconds up to {MAX_SECONDS:g}",
        problems,
    )
    backoff_max = _typed(
        raw,
        "backoff_max",
        defaults.backoff_max,
        _is_positive_number,
        f"must be a positive number of seconds up to {MAX_SECONDS:g}",
        problems,
    )
    if backoff_max < backoff_initial:
        problems.add("backoff_max", f"({backoff_max}) must not be smaller than backoff_initial ({backoff_initial}).")
        backoff_max = backoff_initial
    settings = MqttSettings(
        client_id_prefix=prefix,
        username=username,
        password=password,
        tls=_tls(raw.get("tls"), problems),
        keepalive=keepalive,
        queue_size=queue_size,
        status_topic=_template(raw, "status_topic", defaults.status_topic, frozenset({"node"}), problems),
        device_topic=_template(raw, "device_topic", None, frozenset({"namespace", "device", "node"}), problems),
        backoff_initial=float(backoff_initial),
        backoff_max=float(backoff_max),
    )
    return settings, problems.items
