"""Mapper configuration: the mapper-framework YAML keys plus jetson-mapper's own sections."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mapper.http.webconfig import WebConfigError, load_web_config
from mapper.pods.settings import PodSettings, parse_pod_settings
from mapper.sections.reader import MAX_SECONDS, Section, unknown_keys
from mapper.sinks.mqtt.settings import MqttSettings, parse_mqtt_settings
from mapper.sinks.panel_settings import PanelSettings, parse_panel_settings

DEFAULT_SOCKET = "/etc/kubeedge/jetson.sock"
DEFAULT_EDGECORE_SOCK = "/etc/kubeedge/dmi.sock"
DEFAULT_JTOP_SOCKET = "/run/jtop.sock"
DEFAULT_HTTP_PORT = 7777

KNOWN_SECTIONS = {
    "grpc_server", "common", "source", "http", "dmi", "standalone", "mqtt", "control", "node_name", "log_level",
    "pods", "datapanel",
}


class ConfigError(ValueError):
    """Every problem found in a config file, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class CommonConfig:
    """The mapper-framework `common` section."""

    name: str = "jetson-mapper"
    version: str = "v1.0.0"
    api_version: str = "v1.0.0"
    protocol: str = "jetson"
    address: str = "127.0.0.1"
    edgecore_sock: str = DEFAULT_EDGECORE_SOCK
    http_port: int = DEFAULT_HTTP_PORT


@dataclass(frozen=True)
class SourceConfig:
    """Where and how often to read the board through jtop."""

    jtop_socket: str = DEFAULT_JTOP_SOCKET
    interval: float = 1.0


@dataclass(frozen=True)
class HttpConfig:
    """The HTTP server: metrics, health and the REST API."""

    address: str = "0.0.0.0"
    rest_write_enabled: bool = False
    rest_write_token_file: str = "/var/run/secrets/jetson-mapper/token"
    web_config_file: str = ""  # Prometheus exporter-toolkit format: TLS and basic auth (docs/deployment.md)


@dataclass(frozen=True)
class DmiConfig:
    """Budget of DMI calls towards EdgeCore (EdgeCore allows 1 request/s for all mappers together)."""

    max_request_rate: float = 0.5
    burst: int = 5
    call_deadline: float = 5.0


@dataclass(frozen=True)
class ControlConfig:
    """How desired twin values are applied to the board."""

    allow_reboot: bool = False
    reapply_on_drift: bool = False
    confirm_timeout: float = 15.0
    max_attempts: int = 3


@dataclass(frozen=True)
class MapperConfig:
    """The whole, validated mapper configuration."""

    socket_path: str = DEFAULT_SOCKET
    common: CommonConfig = field(default_factory=CommonConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    dmi: DmiConfig = field(default_factory=DmiConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    pods: PodSettings = field(default_factory=PodSettings)
    datapanel: PanelSettings = field(default_factory=PanelSettings)
    standalone_files: tuple[Path, ...] = ()
    standalone_dmi: bool = False  # standalone.serve_dmi: serve the DMI socket without EdgeCore too
    node_name: str = ""
    log_level: str = "INFO"
    warnings: tuple[str, ...] = ()  # keys of mapper-framework configs accepted but unused, logged at start

    @property
    def standalone(self) -> bool:
        """True when Devices come from files instead of EdgeCore."""
        return bool(self.standalone_files)


# Sections of mapper-framework (and its mapper-generator predecessor) configs that jetson-mapper does not use.
FRAMEWORK_UNUSED_SECTIONS = frozenset({"dev_init"})


def parse_config(raw: Any, base_dir: Path, env: Mapping[str, str]) -> MapperConfig:
    """Validate a parsed YAML document; raise ConfigError listing every problem."""
    problems: list[str] = []
    warnings: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError([f"the file must hold a mapping of sections, got {type(raw).__name__}"])
    for key, message in unknown_keys(raw, KNOWN_SECTIONS | FRAMEWORK_UNUSED_SECTIONS, "section"):
        problems.append(f"{key}: {message}")
    warnings.extend(f"{key}: a mapper-framework section jetson-mapper does not use; ignored"
                    for key in raw if key in FRAMEWORK_UNUSED_SECTIONS)
    grpc = Section("grpc_server", raw.get("grpc_server"), problems)
    common_r = Section("common", raw.get("common"), problems, warnings, lenient=True)
    common = CommonConfig(
        name=common_r.text("name", CommonConfig.name),
        version=common_r.text("version", CommonConfig.version),
        api_version=common_r.text("api_version", CommonConfig.api_version),
        protocol=common_r.text("protocol", CommonConfig.protocol),
        address=common_r.text("address", CommonConfig.address),
        edgecore_sock=common_r.text("edgecore_sock", CommonConfig.edgecore_sock),
        # a string in mapper-framework's config ("7777"), so quotes are fine here
        http_port=common_r.integer("http_port", DEFAULT_HTTP_PORT, 0, 65535, quoted=True),
    )
    if not common.protocol:
        problems.append("common.protocol: must not be empty (Devices name it in spec.protocol.protocolName)")
    socket_path = grpc.text("socket_path", DEFAULT_SOCKET)
    for what, path in (("grpc_server.socket_path", socket_path), ("common.edgecore_sock", common.edgecore_sock)):
        if not os.path.isabs(path):
            problems.append(f"{what}: must be an absolute path, got {path!r}")
        elif len(path.encode()) > 107:
            problems.append(f"{what}: unix socket paths are limited to 107 bytes, got {len(path.encode())}")
    source_r = Section("source", raw.get("source"), problems)
    source = SourceConfig(
        jtop_socket=source_r.text("jtop_socket", DEFAULT_JTOP_SOCKET),
        interval=source_r.number("interval", 1.0, minimum=0.1, maximum=MAX_SECONDS),
    )
    http_r = Section("http", raw.get("http"), problems)
    http = HttpConfig(
        address=_listen_address(http_r),
        rest_write_enabled=http_r.flag("rest_write_enabled", False),
        rest_write_token_file=http_r.text("rest_write_token_file", HttpConfig.rest_write_token_file),
        web_config_file=_web_config_file(http_r, base_dir),
    )
    if http.rest_write_enabled and (token_problem := _token_file_problem(http.rest_write_token_file)):
        http_r.problem("rest_write_token_file", f"REST writes are on but {http.rest_write_token_file} {token_problem}")
    dmi_r = Section("dmi", raw.get("dmi"), problems)
    dmi = DmiConfig(
        max_request_rate=dmi_r.number("max_request_rate", 0.5, positive=True),
        burst=dmi_r.integer("burst", 5, 1, 100),
        call_deadline=dmi_r.number("call_deadline", 5.0, positive=True, maximum=MAX_SECONDS),
    )
    if dmi.max_request_rate > 0.9:
        problems.append(
            f"dmi.max_request_rate: EdgeCore limits all DMI calls to 1 request/s; {dmi.max_request_rate} leaves "
            "no room for other mappers (use at most 0.9)"
        )
    control_r = Section("control", raw.get("control"), problems)
    control = ControlConfig(
        allow_reboot=control_r.flag("allow_reboot", False),
        reapply_on_drift=control_r.flag("reapply_on_drift", False),
        confirm_timeout=control_r.number("confirm_timeout", 15.0, positive=True, maximum=MAX_SECONDS),
        max_attempts=control_r.integer("max_attempts", 3, 1, 20),
    )
    mqtt_raw = raw.get("mqtt") or {}
    if isinstance(mqtt_raw, Mapping):
        mqtt, mqtt_problems = parse_mqtt_settings(mqtt_raw, env)
        problems.extend(mqtt_problems)
    else:
        problems.append(f"mqtt: must be a mapping, got {type(mqtt_raw).__name__}")
        mqtt = MqttSettings()
    pods, pod_problems = parse_pod_settings(raw.get("pods"))
    problems.extend(pod_problems)
    datapanel, datapanel_problems = parse_panel_settings(raw.get("datapanel"), env)
    problems.extend(datapanel_problems)
    standalone_files, standalone_dmi = _standalone(raw.get("standalone"), base_dir, problems)
    for section in (grpc, common_r, source_r, http_r, dmi_r, control_r):
        section.finish()
    node_name = str(raw.get("node_name") or env.get("NODE_NAME") or socket.gethostname())
    log_level = str(raw.get("log_level", "INFO")).upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        problems.append(f"log_level: one of debug, info, warning, error; got {raw.get('log_level')!r}")
        log_level = "INFO"
    if problems:
        raise ConfigError(problems)
    return MapperConfig(
        socket_path=socket_path, common=common, source=source, http=http, dmi=dmi, control=control,
        mqtt=mqtt, pods=pods, datapanel=datapanel, standalone_files=standalone_files,
        standalone_dmi=standalone_dmi, node_name=node_name,
        log_level=log_level, warnings=tuple(warnings),
    )


def _web_config_file(http: Section, base_dir: Path) -> str:
    """http.web_config_file, relative to the config's folder, loaded once to report its problems now."""
    name = http.text("web_config_file", "")
    if not name:
        return ""
    path = (base_dir / name).resolve()
    try:
        load_web_config(path)
    except WebConfigError as exc:
        for problem in exc.problems:
            http.problem("web_config_file", problem)
    return str(path)


def _token_file_problem(path: str) -> str | None:
    """Why the REST write token file cannot be used (it is read again at every write), or None."""
    try:
        token = Path(path).read_bytes()
    except FileNotFoundError:
        return "does not exist (mount the Secret there)"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return "is empty" if not token.strip() else None


def _listen_address(http: Section) -> str:
    """http.address: an IPv4 or IPv6 address of this host (no names: they would be resolved at every start)."""
    address = http.text("address", HttpConfig.address)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        http.problem("address", f"must be an IP address to listen on (0.0.0.0, 127.0.0.1, ::), got {address!r}")
        return HttpConfig.address
    return address


def _standalone(raw: Any, base_dir: Path, problems: list[str]) -> tuple[tuple[Path, ...], bool]:
    """The Device/DeviceModel files of standalone mode (relative paths taken from the config's folder), and
    whether the DMI socket is served without EdgeCore (`serve_dmi`, for DMI tools; off: no gRPC at all)."""
    if raw is None:
        return (), False
    reader = Section("standalone", raw, problems)
    files = reader.value("files")
    serve_dmi = reader.flag("serve_dmi", False)
    reader.finish()
    files = [] if files is None else files
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        problems.append("standalone.files: must be a list of paths to Device/DeviceModel YAML files")
        return (), serve_dmi
    paths = tuple((base_dir / f).resolve() for f in files)
    problems.extend(f"standalone.files: {p} does not exist" for p in paths if not p.is_file())
    if not paths:
        problems.append("standalone.files: list at least one DeviceModel and one Device file")
    return paths, serve_dmi


def load_config(path: Path, env: Mapping[str, str] | None = None) -> MapperConfig:
    """Read and validate a config file; raise ConfigError with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"cannot read {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                           f"{exc.start}); the config is a YAML file"]) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path} is not valid YAML: {exc}"]) from exc
    return parse_config(raw, path.parent, os.environ if env is None else env)
