"""A property's pushMethod (http, mqtt, otel and one dbMethod) between DMI pb messages and the internal model.

Only the shape is checked here (what protobuf cannot express: qos range, an MQTT address and topic); what a
sink needs of a method (a URL it can parse, a port in range, ...) is checked by that sink's `check`.
"""

from __future__ import annotations

import logging

from mapper.devices.model import (
    DB_METHODS,
    PUSH_METHODS,
    DeviceProperty,
    DeviceRejected,
    HttpPush,
    Influxdb2Method,
    MqttPush,
    MysqlMethod,
    OtelPush,
    RedisMethod,
    TdengineMethod,
)
from mapper.dmi.generated import api_pb2 as pb

log = logging.getLogger(__name__)

PushFields = dict[str, object]


def push_from_pb(prop: pb.DeviceProperty, field: str) -> PushFields:
    """The DeviceProperty keyword arguments of a pb property's pushMethod; DeviceRejected names a bad field."""
    if not prop.HasField("pushMethod"):
        return {}
    push = prop.pushMethod
    fields: PushFields = {}
    if push.HasField("mqtt"):
        mqtt = push.mqtt
        if not mqtt.address or not mqtt.topic:
            raise DeviceRejected(f"{field}.pushMethod.mqtt needs both address and topic")
        if mqtt.qos not in (0, 1, 2):
            raise DeviceRejected(f"{field}.pushMethod.mqtt.qos {mqtt.qos} is not 0, 1 or 2")
        fields["mqtt"] = MqttPush(address=mqtt.address, topic=mqtt.topic, qos=mqtt.qos, retained=mqtt.retained)
    if push.HasField("http"):
        http = push.http
        fields["http"] = HttpPush(hostname=http.hostname, port=http.port, requestpath=http.requestpath,
                                  timeout_ms=http.timeout)
    if push.HasField("otel"):
        fields["otel"] = OtelPush(endpoint_url=push.otel.endpointURL)
    if push.HasField("dbMethod"):
        fields.update(_db_from_pb(push.dbMethod))
    named = [name for name in PUSH_METHODS if name in fields]
    if len(named) > 1:
        log.warning("%s.pushMethod names %s: only %s runs (mapper-framework runs the first one too)",
                    field, " and ".join(named), named[0])
    databases = [name for name in DB_METHODS if name in fields]
    if len(databases) > 1:
        log.warning("%s.pushMethod.dbMethod names %s: only %s runs (mapper-framework runs the first one too)",
                    field, " and ".join(databases), databases[0])
    return fields


def _db_from_pb(db: pb.DBMethod) -> PushFields:
    """Every database a dbMethod names."""
    fields: PushFields = {}
    if db.HasField("influxdb2"):
        client, data = db.influxdb2.influxdb2ClientConfig, db.influxdb2.influxdb2DataConfig
        fields["influxdb2"] = Influxdb2Method(
            url=client.url, org=client.org, bucket=client.bucket, measurement=data.measurement,
            tags=dict(sorted(data.tag.items())), field_key=data.fieldKey,
        )
    if db.HasField("redis"):
        redis = db.redis.redisClientConfig
        fields["redis"] = RedisMethod(addr=redis.addr, db=redis.db, poolsize=redis.poolsize,
                                      min_idle_conns=redis.minIdleConns)
    if db.HasField("tdengine"):
        td = db.tdengine.tdEngineClientConfig
        fields["tdengine"] = TdengineMethod(addr=td.addr, dbname=td.dbname)
    if db.HasField("mysql"):
        mysql = db.mysql.mysqlClientConfig
        fields["mysql"] = MysqlMethod(addr=mysql.addr, database=mysql.database, user_name=mysql.userName)
    return fields


def push_to_pb(prop: DeviceProperty, item: pb.DeviceProperty) -> None:
    """Fill `item.pushMethod` with every method of `prop` (GetDevice answers)."""
    push = item.pushMethod
    if prop.mqtt is not None:
        push.mqtt.CopyFrom(pb.PushMethodMQTT(address=prop.mqtt.address, topic=prop.mqtt.topic,
                                             qos=prop.mqtt.qos, retained=prop.mqtt.retained))
    if prop.http is not None:
        push.http.CopyFrom(pb.PushMethodHTTP(hostname=prop.http.hostname, port=prop.http.port,
                                             requestpath=prop.http.requestpath, timeout=prop.http.timeout_ms))
    if prop.otel is not None:
        push.otel.endpointURL = prop.otel.endpoint_url
    db = push.dbMethod
    if prop.influxdb2 is not None:
        influx = prop.influxdb2
        db.influxdb2.influxdb2ClientConfig.CopyFrom(
            pb.Influxdb2ClientConfig(url=influx.url, org=influx.org, bucket=influx.bucket))
        db.influxdb2.influxdb2DataConfig.CopyFrom(
            pb.Influxdb2DataConfig(measurement=influx.measurement, tag=dict(influx.tags), fieldKey=influx.field_key))
    if prop.redis is not None:
        db.redis.redisClientConfig.CopyFrom(pb.RedisClientConfig(
            addr=prop.redis.addr, db=prop.redis.db, poolsize=prop.redis.poolsize,
            minIdleConns=prop.redis.min_idle_conns))
    if prop.tdengine is not None:
        db.tdengine.tdEngineClientConfig.CopyFrom(
            pb.TDEngineClientConfig(addr=prop.tdengine.addr, dbname=prop.tdengine.dbname))
    if prop.mysql is not None:
        db.mysql.mysqlClientConfig.CopyFrom(pb.MySQLClientConfig(
            addr=prop.mysql.addr, database=prop.mysql.database, userName=prop.mysql.user_name))
    if not db.ListFields():
        push.ClearField("dbMethod")
    if not push.ListFields():
        item.ClearField("pushMethod")
