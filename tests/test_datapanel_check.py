"""Malformed push and database methods are refused over DMI with INVALID_ARGUMENT naming the property and field;
the running Device is kept. CRD spellings reach the right pb fields, and GetDevice gives every method back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from common import free_port, short_dir
from datapanel_support import NAMESPACE, device, model

from mapper.app import MapperApp
from mapper.config import CommonConfig, HttpConfig, MapperConfig
from mapper.dmi.convert import device_from_pb
from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.generated import api_pb2_grpc as pb_grpc
from mapper.dmi.manifests import load_manifests

HTTP = {"hostName": "http://127.0.0.1", "port": 8080, "requestPath": "/in"}


@pytest.fixture
def call() -> Iterator[Callable[[str, Any], Any]]:
    """A mapper's DMI server (sinks checking Devices as in production) and a way to call it like EdgeCore."""
    with short_dir() as folder:
        config = MapperConfig(socket_path=str(folder / "jetson.sock"), node_name="n",
                              common=CommonConfig(edgecore_sock=str(folder / "dmi.sock"), http_port=free_port()),
                              http=HttpConfig(address="127.0.0.1"))
        app = MapperApp(config)
        app.server.start()

        def invoke(method: str, request: Any) -> Any:
            with grpc.insecure_channel(f"unix:{config.socket_path}") as channel:
                return getattr(pb_grpc.DeviceMapperServiceStub(channel), method)(request, timeout=10)

        invoke("CreateDeviceModel", pb.CreateDeviceModelRequest(model=model()))
        try:
            yield invoke
        finally:
            app.server.stop()
            app.sinks.close()


def refusal(call: Callable[[str, Any], Any], method: str, request: Any) -> str:
    """The details of an INVALID_ARGUMENT answer."""
    with pytest.raises(grpc.RpcError) as caught:
        call(method, request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    return str(caught.value.details())


@pytest.mark.parametrize(("push", "field"), [
    ({"http": {**HTTP, "port": 0}}, "pushMethod.http.port 0 is out of range"),
    ({"http": {**HTTP, "port": 70000}}, "pushMethod.http.port 70000 is out of range"),
    ({"http": {**HTTP, "hostName": ""}}, "pushMethod.http.hostName is empty"),
    ({"http": {**HTTP, "hostName": "ftp://h"}}, "pushMethod.http.hostName 'ftp://h' must be http://host"),
    ({"http": {**HTTP, "hostName": "127.0.0.1"}}, "must be http://host or https://host"),
    ({"http": {**HTTP, "requestPath": "in"}}, "pushMethod.http.requestPath 'in' must start with /"),
    ({"otel": {"endpointURL": ""}}, "pushMethod.otel.endpointURL is empty"),
    ({"otel": {"endpointURL": "grpc://c:4317"}}, "pushMethod.otel.endpointURL 'grpc://c:4317' must be http"),
    ({"otel": {"endpointURL": "http://c:99999/v1/metrics"}}, "has a port out of range"),
    ({"dbMethod": {"influxdb2": {"influxdb2ClientConfig": {"url": "http://i:8086", "org": "o"},
                                 "influxdb2DataConfig": {"measurement": "m", "fieldKey": "f"}}}},
     "pushMethod.dbMethod.influxdb2.influxdb2ClientConfig.bucket is empty"),
    ({"dbMethod": {"influxdb2": {"influxdb2ClientConfig": {"url": "i:8086", "org": "o", "bucket": "b"},
                                 "influxdb2DataConfig": {"measurement": "m", "fieldKey": "f"}}}},
     "influxdb2ClientConfig.url 'i:8086' must be http://"),
    ({"dbMethod": {"influxdb2": {"influxdb2ClientConfig": {"url": "http://i", "org": "o", "bucket": "b"},
                                 "influxdb2DataConfig": {"measurement": "m"}}}},
     "pushMethod.dbMethod.influxdb2.influxdb2DataConfig.fieldKey is empty"),
    ({"dbMethod": {"redis": {"redisClientConfig": {"addr": ""}}}}, "redisClientConfig.addr: '' is not host:port"),
    ({"dbMethod": {"redis": {"redisClientConfig": {"addr": "r:0"}}}}, "port '0' is out of range"),
    ({"dbMethod": {"redis": {"redisClientConfig": {"addr": "r:6379", "poolsize": 2, "minIdleConns": 3}}}},
     "redisClientConfig.minIdleConns 3 exceeds poolsize 2"),
    ({"dbMethod": {"mysql": {"mysqlClientConfig": {"addr": "m:3306", "userName": "u"}}}},
     "pushMethod.dbMethod.mysql.mysqlClientConfig.database is empty"),
    ({"dbMethod": {"mysql": {"mysqlClientConfig": {"addr": "m:3306", "database": "d"}}}},
     "mysqlClientConfig.userName is empty"),
    ({"dbMethod": {"TDEngine": {"TDEngineClientConfig": {"addr": "t:6041", "dbName": "d"}}}},
     "pushMethod.dbMethod.tdengine is not supported by jetson-mapper"),
])
def test_a_malformed_method_is_refused_naming_the_field_and_the_device_kept(
        call: Callable[[str, Any], Any], push: dict[str, Any], field: str) -> None:
    good = device("checked", lambda prop: {"http": HTTP} if prop == "gpu_usage" else {})
    call("RegisterDevice", pb.RegisterDeviceRequest(device=good))
    bad = device("checked", lambda prop: push if prop == "gpu_usage" else {})
    details = refusal(call, "UpdateDevice", pb.UpdateDeviceRequest(device=bad))
    assert "property 'gpu_usage'" in details and field in details, details
    kept = call("GetDevice", pb.GetDeviceRequest(deviceName="checked", deviceNamespace=NAMESPACE)).device
    pushed = next(p for p in kept.spec.properties if p.name == "gpu_usage").pushMethod
    assert pushed.http.port == 8080 and not pushed.HasField("dbMethod") and not pushed.HasField("otel")
    assert "gpu_usage" in refusal(call, "RegisterDevice", pb.RegisterDeviceRequest(device=renamed(bad, "fresh")))


def renamed(message: pb.Device, name: str) -> pb.Device:
    """A copy under another name."""
    copy = pb.Device()
    copy.CopyFrom(message)
    copy.name = name
    return copy


def test_crd_spellings_reach_the_pb_fields_and_get_device_gives_them_back(
        call: Callable[[str, Any], Any]) -> None:
    """hostName, requestPath, TDEngine/TDEngineClientConfig/dbName ... as the v1.23.1 CRD spells them."""
    props = {
        "gpu_usage": {"http": {"hostName": "https://h", "port": 443, "requestPath": "/p", "timeout": 1500},
                      "dbMethod": {"influxdb2": {
                          "influxdb2ClientConfig": {"url": "http://i:8086", "org": "o", "bucket": "b"},
                          "influxdb2DataConfig": {"measurement": "m", "tag": {"k": "v"}, "fieldKey": "f"}}}},
        "cpu_usage": {"otel": {"endpointURL": "http://c:4318/v1/metrics"},
                      "dbMethod": {"redis": {"redisClientConfig": {"addr": "r:6379", "db": 2, "poolsize": 5,
                                                                   "minIdleConns": 1}}}},
        "uptime": {"dbMethod": {"mysql": {"mysqlClientConfig": {"addr": "m:3306", "database": "d",
                                                                "userName": "u"}}}},
        "ram_used": {"dbMethod": {"TDEngine": {"TDEngineClientConfig": {"addr": "t:6041", "dbName": "td"}}}},
    }
    message = device("spelled", lambda prop: props.get(prop, {}))
    by_name = {p.name: p.pushMethod for p in message.spec.properties}
    http, influx = by_name["gpu_usage"].http, by_name["gpu_usage"].dbMethod.influxdb2
    assert (http.hostname, http.port, http.requestpath, http.timeout) == ("https://h", 443, "/p", 1500)
    assert (influx.influxdb2ClientConfig.url, influx.influxdb2ClientConfig.org,
            influx.influxdb2ClientConfig.bucket) == ("http://i:8086", "o", "b")
    assert (influx.influxdb2DataConfig.measurement, dict(influx.influxdb2DataConfig.tag),
            influx.influxdb2DataConfig.fieldKey) == ("m", {"k": "v"}, "f")
    assert by_name["cpu_usage"].otel.endpointURL == "http://c:4318/v1/metrics"
    redis = by_name["cpu_usage"].dbMethod.redis.redisClientConfig
    assert (redis.addr, redis.db, redis.poolsize, redis.minIdleConns) == ("r:6379", 2, 5, 1)
    mysql = by_name["uptime"].dbMethod.mysql.mysqlClientConfig
    assert (mysql.addr, mysql.database, mysql.userName) == ("m:3306", "d", "u")
    td = by_name["ram_used"].dbMethod.tdengine.tdEngineClientConfig
    assert (td.addr, td.dbname) == ("t:6041", "td")
    internal = device_from_pb(message)
    assert internal.property("gpu_usage").http.timeout_ms == 1500  # type: ignore[union-attr]
    assert internal.property("ram_used").db_method == "tdengine"  # type: ignore[union-attr]
    del props["ram_used"]  # refused (tdengine): GetDevice needs a running device
    message = device("spelled", lambda prop: props.get(prop, {}))
    call("RegisterDevice", pb.RegisterDeviceRequest(device=message))
    back = call("GetDevice", pb.GetDeviceRequest(deviceName="spelled", deviceNamespace=NAMESPACE)).device
    assert {p.name: p.pushMethod for p in back.spec.properties} == {p.name: p.pushMethod
                                                                   for p in message.spec.properties}


def test_the_first_push_method_and_the_first_database_run_as_in_mapper_framework(tmp_path: Path) -> None:
    both = {"http": HTTP, "mqtt": {"address": "tcp://b:1883", "topic": "t"}, "otel": {"endpointURL": "http://c"},
            "dbMethod": {"redis": {"redisClientConfig": {"addr": "r:1"}},
                         "mysql": {"mysqlClientConfig": {"addr": "m", "database": "d", "userName": "u"}}}}
    prop = device_from_pb(device("several", lambda name: both)).property("gpu_usage")
    assert prop is not None and (prop.push_method, prop.db_method) == ("http", "redis")
    assert prop.mqtt is not None and prop.mysql is not None  # kept (GetDevice shows them), not run


def test_the_device_model_example_uses_every_method() -> None:
    """device-model/jetson-datapanel.yaml names each push method and database (validated against the CRDs by
    tests/test_device_model.py)."""
    path = Path(__file__).resolve().parents[1] / "device-model" / "jetson-datapanel.yaml"
    _, devices = load_manifests([path])
    internal = device_from_pb(devices[0])
    assert {p.push_method for p in internal.properties} - {None} == {"http", "mqtt", "otel"}
    assert {p.db_method for p in internal.properties} >= {"influxdb2", "redis", "mysql"}
    assert "TDEngine" not in repr(yaml.safe_load(path.read_text())["spec"]["properties"])
