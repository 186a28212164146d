"""Each data-panel sink's wire shape against real servers: the HTTP form body and its retries, InfluxDB line
protocol types, Redis members as Go marshals them, MySQL names that SQL dislikes, credentials kept out of errors."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from common import wait_until
from datapanel_servers import HttpReceiver, MariaDb, RedisServer, have
from datapanel_support import NAMESPACE, device, model

from mapper.config import MapperConfig
from mapper.devices.registry import DeviceRegistry, RunningDevice
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.sinks.base import Delivery, Sink
from mapper.sinks.db_influxdb2 import Influxdb2Sink
from mapper.sinks.db_mysql import MysqlWriter, Row, quoted
from mapper.sinks.db_redis import RedisWriter, data_model
from mapper.sinks.panel import text_value
from mapper.sinks.panel_settings import PanelSettings
from mapper.sinks.push_http import HttpPushSink
from mapper.sinks.queue import QueueSettings
from mapper.sinks.registry import SinkContext

VALUES = {"uptime": 2712.87, "gpu_usage": 42.5, "cpu_usage": 1e-7, "ram_used": 3_000_000_000,
          "fan_profile": "quiet & cool", "jetson_clocks": True}
SAMPLE = 1_767_225_600.25


def running(push: Callable[[str], dict[str, Any]]) -> RunningDevice:
    """A bound Device with `push` on every property."""
    registry = DeviceRegistry("jetson")
    registry.upsert_model(model_from_pb(model()))
    return registry.upsert_device(device_from_pb(device("wire", push)))


def deliver(sink: Sink, dev: RunningDevice) -> None:
    """Every route of the device once, with VALUES, as the runtime hands them over."""
    for route in sink.routes(dev):
        values = tuple((prop, VALUES[prop.name]) for prop in route.properties)
        sink.deliver(Delivery(dev, route, values, SAMPLE))


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver().start()
    yield server
    server.stop()


def test_http_form_body_is_mapper_frameworks_and_errors_are_retried_or_dropped(receiver: HttpReceiver) -> None:
    receiver.answers = [503, 500]  # retried: the values arrive after
    sink = HttpPushSink(SinkContext(MapperConfig(), "node"))
    dev = running(lambda prop: {"http": {"hostName": "http://127.0.0.1", "port": receiver.port,
                                         "requestPath": f"/in/{prop}"}})
    deliver(sink, dev)
    wait_until(lambda: len(receiver.received()) == len(VALUES), "every property POSTed")
    local = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(SAMPLE))
    for request in receiver.received():
        prop = request.path.rsplit("/", 1)[1]
        assert request.content_type == "application/x-www-form-urlencoded"
        assert parse_qs(request.body.decode(), strict_parsing=True) == {prop: [text_value(VALUES[prop])],
                                                                      "time": [local]}
        assert list(parse_qs(request.body.decode())) == [prop, "time"]
    bodies = {r.path.rsplit("/", 1)[1]: r.body for r in receiver.received()}
    assert bodies["gpu_usage"] == b"gpu_usage=42.5&time=" + local.replace(" ", "+").replace(":", "%3A").encode()
    assert parse_qs(bodies["cpu_usage"].decode())["cpu_usage"] == ["0.0000001"], "no exponent, as Go's 'f' format"
    assert len({r.client_port for r in receiver.received()}) == 1, "one keep-alive connection"
    receiver.answers = [404]
    deliver(sink, dev)
    wait_until(lambda: sink.stats()[0].queued == 0, "drained")
    stats = sink.stats()[0]
    assert (stats.sent, stats.dropped, stats.failed) == (2 * len(VALUES) - 1, 1, 3)
    assert stats.target == f"http://127.0.0.1:{receiver.port}"
    sink.close()


def test_http_timeout_is_honoured_and_the_value_retried(receiver: HttpReceiver) -> None:
    receiver.delay = 1.0
    sink = HttpPushSink(SinkContext(MapperConfig(datapanel=PanelSettings(queues={"http": QueueSettings(
        batch=1, backoff_initial=0.1)})), "node"))
    dev = running(lambda prop: {"http": {"hostName": "http://127.0.0.1", "port": receiver.port, "timeout": 200}}
                  if prop == "gpu_usage" else {})
    deliver(sink, dev)
    wait_until(lambda: sink.stats() and sink.stats()[0].failed >= 1, "a timed-out attempt")
    receiver.delay = 0.0
    wait_until(lambda: sink.stats()[0].sent == 1, "delivered after the timeout")
    assert parse_qs(receiver.received()[-1].body.decode())["gpu_usage"] == ["42.5"]
    sink.close()


def test_influx_points_keep_the_property_types_and_the_sample_time() -> None:
    sink = Influxdb2Sink(SinkContext(MapperConfig(), "node"))
    dev = running(lambda prop: {"dbMethod": {"influxdb2": {
        "influxdb2ClientConfig": {"url": "http://127.0.0.1:1", "org": "o", "bucket": "b"},
        "influxdb2DataConfig": {"measurement": "jetson", "tag": {"device": "wire"}, "fieldKey": prop}}}})
    lines = {}
    for bound in dev.properties:
        prop = dev.device.property(bound.name)
        assert prop is not None
        row = sink.item(dev.device, bound, prop, VALUES[bound.name], SAMPLE)
        assert row is not None and (row.org, row.bucket) == ("o", "b")
        lines[bound.name] = row.point.to_line_protocol()
    assert lines["ram_used"] == "jetson,device=wire ram_used=3000000000i 1767225600250"
    assert lines["gpu_usage"] == "jetson,device=wire gpu_usage=42.5 1767225600250"
    assert lines["jetson_clocks"] == "jetson,device=wire jetson_clocks=true 1767225600250"
    assert lines["fan_profile"] == 'jetson,device=wire fan_profile="quiet & cool" 1767225600250'
    bound = dev.properties[0]
    assert sink.item(dev.device, bound, dev.device.properties[0], float("nan"), SAMPLE) is None


def test_redis_member_is_the_json_go_marshals() -> None:
    member = data_model("default", "jetson-xavier", "gpu_usage", "42.5", "float", 1767225600250)
    assert member == (b'{"DeviceName":"jetson-xavier","PropertyName":"gpu_usage","Namespace":"default",'
                      b'"Value":"42.5","Type":"float","TimeStamp":1767225600250}')


needs_servers = pytest.mark.skipif(not (have("redis-server") and have("mariadbd")),
                                   reason="needs redis-server and mariadb-server (.ci/run installs them)")


@needs_servers
def test_mysql_names_sql_dislikes_are_quoted_and_values_bound(tmp_path: Path) -> None:
    server = MariaDb(tmp_path).start()
    try:
        method = device_from_pb(device("wire", lambda prop: {"dbMethod": {"mysql": {"mysqlClientConfig": {
            "addr": f"127.0.0.1:{server.port}", "database": server.database, "userName": server.user}}}}))
        prop = method.properties[0].mysql
        assert prop is not None
        writer = MysqlWriter(prop, server.password, 5.0)
        table = "ns/dev`; DROP TABLE x; --/it's"
        when = datetime.datetime(2026, 1, 1, 0, 0, 0, 250000)
        writer.write([Row(table, when, "a'b`c"), Row(table, when, "2")])
        assert server.query(f"SELECT ts, field FROM {quoted(table)} ORDER BY id") == [(when, "a'b`c"), (when, "2")]
        assert (table,) in server.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                        server.database)
        wrong = MysqlWriter(prop, "not-the-Password-9", 5.0)
        with pytest.raises(Exception) as caught:
            wrong.write([Row(table, when, "x")])
        assert "not-the-Password-9" not in str(caught.value) and "Access denied" in str(caught.value)
        writer.close()
    finally:
        server.stop()


@needs_servers
def test_redis_honours_db_and_min_idle_connections(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        method = device_from_pb(device("wire", lambda prop: {"dbMethod": {"redis": {"redisClientConfig": {
            "addr": f"127.0.0.1:{server.port}", "db": 5, "poolsize": 3, "minIdleConns": 2}}}})).properties[0].redis
        assert method is not None
        from mapper.sinks.db_redis import Member
        writer = RedisWriter(method, server.password, 5.0)
        writer.write([Member("wire", 1, b"m1"), Member("wire", 2, b"m2"), Member("wire", 2, b"m2")])
        assert server.client(db=5).zrange("wire", 0, -1, withscores=True) == [(b"m1", 1.0), (b"m2", 2.0)]
        clients = [c for c in server.client().client_list() if c["db"] == "5"]
        assert len(clients) == 2, "minIdleConns connections opened"
        writer.close()
        wrong = RedisWriter(method, "wrong-Password-7", 5.0)
        with pytest.raises(Exception) as caught:
            wrong.write([Member("wire", 3, b"m3")])
        assert "wrong-Password-7" not in str(caught.value)
    finally:
        server.stop()


def test_settings_of_the_sink_come_from_the_config() -> None:
    config = MapperConfig(datapanel=PanelSettings(http_body="json"))
    sink = HttpPushSink(SinkContext(config, "node"))
    dev = running(lambda prop: {"http": {"hostName": "http://127.0.0.1", "port": 1}})
    bound = dev.properties[1]
    prop = dev.device.property(bound.name)
    assert prop is not None
    post = sink.item(dev.device, bound, prop, VALUES[bound.name], SAMPLE)
    assert post.content_type == "application/json" and post.timeout == 5.0
    assert post.body.startswith(b'{"device":"wire","namespace":"' + NAMESPACE.encode())
