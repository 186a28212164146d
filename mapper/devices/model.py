"""Internal, protocol-independent model of KubeEdge Devices and DeviceModels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

# A configData value after decoding a google.protobuf.Any wrapper (or a YAML scalar).
ConfigValue = str | bool | int | float

PROPERTY_TYPES = ("INT", "FLOAT", "DOUBLE", "STRING", "BOOLEAN", "BYTES", "STREAM")
READ_WRITE = "ReadWrite"
READ_ONLY = "ReadOnly"


class DeviceRejected(ValueError):
    """A Device or DeviceModel that cannot be run; the message says why."""


@dataclass(frozen=True)
class ModelProperty:
    """One property of a DeviceModel (`spec.properties[]`)."""

    name: str
    type: str = "STRING"
    access_mode: str = READ_ONLY
    minimum: str = ""
    maximum: str = ""
    unit: str = ""
    description: str = ""

    @property
    def writable(self) -> bool:
        """Whether the model lets a Device write this property."""
        return self.access_mode == READ_WRITE


@dataclass(frozen=True)
class DeviceModel:
    """A DeviceModel: the catalogue of properties a Device may use."""

    namespace: str
    name: str
    properties: tuple[ModelProperty, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the model: (namespace, name)."""
        return (self.namespace, self.name)

    def property(self, name: str) -> ModelProperty | None:
        """The model property called `name`, if declared."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, ModelProperty]:
        return {p.name: p for p in self.properties}


@dataclass(frozen=True)
class MqttPush:
    """`pushMethod.mqtt` of a Device property."""

    address: str
    topic: str
    qos: int = 0
    retained: bool = False


@dataclass(frozen=True)
class HttpPush:
    """`pushMethod.http`: POST to `hostname:port` + `requestpath` (hostname carries the scheme); timeout in ms."""

    hostname: str
    port: int = 0
    requestpath: str = ""
    timeout_ms: int = 0


@dataclass(frozen=True)
class OtelPush:
    """`pushMethod.otel`: OTLP/HTTP metrics to `endpoint_url`."""

    endpoint_url: str


@dataclass(frozen=True)
class Influxdb2Method:
    """`pushMethod.dbMethod.influxdb2`: client config (url, org, bucket) and data config."""

    url: str = ""
    org: str = ""
    bucket: str = ""
    measurement: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    field_key: str = ""


@dataclass(frozen=True)
class RedisMethod:
    """`pushMethod.dbMethod.redis.redisClientConfig`."""

    addr: str = ""
    db: int = 0
    poolsize: int = 0
    min_idle_conns: int = 0


@dataclass(frozen=True)
class MysqlMethod:
    """`pushMethod.dbMethod.mysql.mysqlClientConfig`."""

    addr: str = ""
    database: str = ""
    user_name: str = ""


@dataclass(frozen=True)
class TdengineMethod:
    """`pushMethod.dbMethod.tdengine.tdEngineClientConfig` (refused: no TDengine to test against)."""

    addr: str = ""
    dbname: str = ""


PUSH_METHODS = ("http", "mqtt", "otel")  # mapper-framework runs the first one a property names
DB_METHODS = ("influxdb2", "redis", "tdengine", "mysql")  # likewise, the first database


@dataclass(frozen=True)
class DeviceProperty:
    """One property of a Device (`spec.properties[]`)."""

    name: str
    desired: str | None = None
    visitor_protocol: str = ""
    visitor_config: Mapping[str, ConfigValue] = field(default_factory=dict)
    report_cycle_ms: int = 0
    collect_cycle_ms: int = 0
    report_to_cloud: bool = False
    mqtt: MqttPush | None = None
    http: HttpPush | None = None
    otel: OtelPush | None = None
    influxdb2: Influxdb2Method | None = None
    redis: RedisMethod | None = None
    tdengine: TdengineMethod | None = None
    mysql: MysqlMethod | None = None

    @property
    def push_method(self) -> str | None:
        """The push method that runs: the first of http, mqtt, otel the property names (as mapper-framework)."""
        return next((name for name in PUSH_METHODS if getattr(self, name) is not None), None)

    @property
    def db_method(self) -> str | None:
        """The database that runs: the first of influxdb2, redis, tdengine, mysql the property names."""
        return next((name for name in DB_METHODS if getattr(self, name) is not None), None)


@dataclass(frozen=True)
class DeviceMethod:
    """A mapper-framework device method (`spec.methods[]`)."""

    name: str
    description: str = ""
    property_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    """A Device instance as the mapper runs it."""

    namespace: str
    name: str
    model_name: str
    protocol: str
    protocol_config: Mapping[str, ConfigValue] = field(default_factory=dict)
    properties: tuple[DeviceProperty, ...] = ()
    methods: tuple[DeviceMethod, ...] = ()
    state_report_to_cloud: bool = False
    state_report_cycle_ms: int = 0

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the device: (namespace, name)."""
        return (self.namespace, self.name)

    @property
    def model_key(self) -> tuple[str, str]:
        """Identity of the device's model: models live in the device's namespace."""
        return (self.namespace, self.model_name)

    def property(self, name: str) -> DeviceProperty | None:
        """The device property called `name`, if listed."""
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, DeviceProperty]:
        return {p.name: p for p in self.properties}


@dataclass(frozen=True)
class TwinValue:
    """One twin as reported to EdgeCore: desired value worked towards and value read back."""

    property_name: str
    reported: str
    observed_desired: str
    metadata: Mapping[str, str] = field(default_factory=dict)
