"""dbMethod.redis: mapper-framework's sorted sets through redis-py, one connection pool per address and db.

As mapper-framework: `ZADD <deviceName> <score> <member>` with score = the timestamp in milliseconds and member =
its JSON DataModel `{"DeviceName","PropertyName","Namespace","Value","Type","TimeStamp"}` (Value a string, as
its Go struct has it; Type the DeviceModel type in lower case, as twins carry it), password from env `PASSWORD`
(or `datapanel.redis.password_file`), `db`, `poolsize` and `minIdleConns` from the CRD. Unlike it, the
timestamp is the sample's, and a batch of values is one pipelined round trip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from mapper.devices.model import Device, DeviceProperty, RedisMethod
from mapper.devices.registry import BoundProperty
from mapper.devices.values import Value
from mapper.sinks.panel import PanelSink, Target, host_port, text_value
from mapper.sinks.queue import Permanent
from mapper.sinks.registry import SinkContext

PREFIX = "pushMethod.dbMethod.redis.redisClientConfig"


@dataclass(frozen=True)
class Member:
    """One sorted-set entry."""

    key: str
    score: int
    member: bytes


def data_model(namespace: str, device: str, prop: str, value: str, type_: str, timestamp_ms: int) -> bytes:
    """mapper-framework's DataModel as Go's json.Marshal writes it (field order, no spaces)."""
    return json.dumps({"DeviceName": device, "PropertyName": prop, "Namespace": namespace, "Value": value,
                       "Type": type_, "TimeStamp": timestamp_ms}, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def check_method(method: RedisMethod) -> list[str]:
    """What is malformed in a redisClientConfig, naming the CRD field."""
    problems = []
    try:
        host_port(method.addr)
    except ValueError as exc:
        problems.append(f"{PREFIX}.addr: {exc}")
    for name, value in (("db", method.db), ("poolsize", method.poolsize), ("minIdleConns", method.min_idle_conns)):
        if value < 0:
            problems.append(f"{PREFIX}.{name} {value} is negative")
    if method.poolsize and method.min_idle_conns > method.poolsize:
        problems.append(f"{PREFIX}.minIdleConns {method.min_idle_conns} exceeds poolsize {method.poolsize}")
    return problems


class RedisWriter:
    """A redis-py client on a pool sized by `poolsize`, warmed with `minIdleConns` connections."""

    def __init__(self, method: RedisMethod, password: str | None, timeout: float) -> None:
        host, port = host_port(method.addr)
        self._pool = redis.ConnectionPool(
            host=host, port=port, db=method.db, password=password, max_connections=method.poolsize or None,
            socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
        self._client = redis.Redis(connection_pool=self._pool)
        self._min_idle = min(method.min_idle_conns, method.poolsize or method.min_idle_conns)
        self._warm = False

    def write(self, batch: Sequence[Member]) -> None:
        """ZADD every member in one pipeline (idempotent: a retried batch adds nothing twice)."""
        if not self._warm:
            self._open_idle()
        pipe = self._client.pipeline(transaction=False)
        for entry in batch:
            pipe.zadd(entry.key, {entry.member: entry.score})
        try:
            pipe.execute()
        except (RedisConnectionError, RedisTimeoutError):
            self._warm = False
            raise
        except ResponseError as exc:  # e.g. WRONGTYPE: the key holds something else
            raise Permanent(f"Redis refused the values: {exc}") from None

    def _open_idle(self) -> None:
        """Open minIdleConns connections and leave them idle in the pool."""
        connections = [self._pool.get_connection() for _ in range(self._min_idle)]
        for connection in connections:
            connection.connect()  # type: ignore[no-untyped-call]
            self._pool.release(connection)
        self._warm = True

    def close(self) -> None:
        """Disconnect the pool."""
        self._pool.disconnect()


class RedisSink(PanelSink[Member]):
    """Every property whose first database is redis."""

    name = "redis"
    method = "redis"

    def __init__(self, context: SinkContext) -> None:
        settings = context.config.datapanel
        super().__init__(settings.queue("redis"), secrets=(settings.redis_password,))
        self._password = settings.redis_password
        self._timeout = settings.timeout
        self._methods: dict[tuple[str, int], RedisMethod] = {}

    def problems(self, device: Device, prop: DeviceProperty) -> list[str]:
        """A malformed address, negative numbers."""
        assert prop.redis is not None
        return check_method(prop.redis)

    def target(self, device: Device, prop: DeviceProperty) -> Target:
        """One pool per address and db (the first property naming them sets poolsize and minIdleConns)."""
        method = prop.redis
        assert method is not None
        host, port = host_port(method.addr)
        shown = f"[{host}]" if ":" in host else host
        key = (f"{shown}:{port}", method.db)
        self._methods.setdefault(key, method)
        return Target(key, f"redis://{shown}:{port}/{method.db}")

    def writer(self, target: Target) -> RedisWriter:
        """A client for the target."""
        return RedisWriter(self._methods[target.key], self._password, self._timeout)  # type: ignore[index]

    def item(self, device: Device, bound: BoundProperty, prop: DeviceProperty, value: Value,
             timestamp: float) -> Member:
        """The sorted-set entry of one value."""
        millis = round(timestamp * 1000)
        member = data_model(device.namespace, device.name, bound.name, text_value(value),
                            bound.binding.type.lower(), millis)
        return Member(device.name, millis, member)


def build(context: SinkContext) -> RedisSink:
    """The Redis sink of a mapper."""
    return RedisSink(context)
