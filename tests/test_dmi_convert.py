"""pb <-> model conversions: wrapper decoding, coercion per property type, rejection of malformed input."""

from __future__ import annotations

import pytest
from google.protobuf import any_pb2, wrappers_pb2

from mapper.devices.model import DeviceRejected, TwinValue
from mapper.dmi import convert
from mapper.dmi.generated import api_pb2 as pb


def packed(wrapper: object) -> any_pb2.Any:
    """An Any holding `wrapper`."""
    value = any_pb2.Any()
    value.Pack(wrapper)  # type: ignore[arg-type]
    return value


@pytest.mark.parametrize(("wrapper", "expected"), [
    (wrappers_pb2.StringValue(value="gpu"), "gpu"),
    (wrappers_pb2.BoolValue(value=True), True),
    (wrappers_pb2.Int32Value(value=-7), -7),
    (wrappers_pb2.Int64Value(value=10_000_000_000), 10_000_000_000),
    (wrappers_pb2.FloatValue(value=3.0), 3.0),
    (wrappers_pb2.FloatValue(value=0.1), 0.1),
    (wrappers_pb2.FloatValue(value=1e10), 1e10),
])
def test_decode_any_wrappers(wrapper: object, expected: object) -> None:
    """Each of the five wrappers decodes to its Python value with its type."""
    value = convert.decode_any(packed(wrapper))
    assert value == expected
    assert type(value) is type(expected)


def test_float_value_three_stays_float_until_coerced() -> None:
    """EdgeCore sends YAML 3 as FloatValue: decode gives 3.0, coerce for an INT property gives 3."""
    value = convert.decode_any(packed(wrappers_pb2.FloatValue(value=3.0)))
    assert value == 3.0 and isinstance(value, float)
    coerced = convert.coerce_value(value, "INT")
    assert coerced == 3 and type(coerced) is int


@pytest.mark.parametrize(("value", "prop_type", "expected"), [
    (3.0, "INT", 3), ("42", "INT", 42), ("3.0", "int", 3), (True, "INT", 1),
    (3, "FLOAT", 3.0), ("2.5", "DOUBLE", 2.5),
    ("true", "BOOLEAN", True), (0.0, "BOOLEAN", False), (False, "BOOLEAN", False),
    (3.0, "STRING", "3"), (2.5, "STRING", "2.5"), (True, "STRING", "true"), ("MAXN", "STRING", "MAXN"),
])
def test_coerce_value(value: object, prop_type: str, expected: object) -> None:
    """Values become the Python type of the property type."""
    result = convert.coerce_value(value, prop_type)  # type: ignore[arg-type]
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(("value", "prop_type"),
                         [(3.5, "INT"), ("x", "INT"), ("maybe", "BOOLEAN"), (2, "BOOLEAN")])
def test_coerce_value_refuses(value: object, prop_type: str) -> None:
    """Impossible conversions raise DeviceRejected naming the type."""
    with pytest.raises(DeviceRejected, match=prop_type):
        convert.coerce_value(value, prop_type)  # type: ignore[arg-type]


def test_decode_any_refuses_unknown_type() -> None:
    """A non-wrapper Any is refused with the field named."""
    with pytest.raises(DeviceRejected, match=r"visitors\.configData\.x.*Duration"):
        convert.decode_any(any_pb2.Any(type_url="type.googleapis.com/google.protobuf.Duration"),
                           "visitors.configData.x")


def jetson_device() -> pb.Device:
    """A pb Device as EdgeCore sends it for a Jetson."""
    device = pb.Device(name="xavier", namespace="edge")
    device.spec.deviceModelReference = "jetson-model"
    device.spec.protocol.protocolName = "jetson"
    device.spec.protocol.configData.data["interval"].Pack(wrappers_pb2.FloatValue(value=2.0))
    prop = device.spec.properties.add(name="fan_speed", reportCycle=10000, collectCycle=2000,
                                      reportToCloud=True)
    prop.desired.value = "50"
    prop.visitors.protocolName = "jetson"
    prop.visitors.configData.data["reading"].Pack(wrappers_pb2.StringValue(value="fan.speed"))
    prop.pushMethod.mqtt.CopyFrom(pb.PushMethodMQTT(address="tcp://127.0.0.1:1883", topic="fan", qos=1))
    device.spec.properties.add(name="gpu_usage", desired=pb.TwinProperty(value=""))
    device.spec.methods.add(name="SetFan", propertyNames=["fan_speed"])
    device.status.reportToCloud = True
    device.status.reportCycle = 30000
    return device


def test_device_from_pb() -> None:
    """Every field lands in the model; cycles stay ms; empty desired is None."""
    device = convert.device_from_pb(jetson_device())
    assert device.key == ("edge", "xavier") and device.model_name == "jetson-model"
    assert device.protocol == "jetson" and device.protocol_config == {"interval": 2.0}
    fan = device.property("fan_speed")
    assert fan is not None and fan.desired == "50" and fan.report_cycle_ms == 10000
    assert fan.collect_cycle_ms == 2000 and fan.report_to_cloud
    assert fan.visitor_config == {"reading": "fan.speed"}
    assert fan.mqtt is not None and fan.mqtt.qos == 1 and fan.mqtt.topic == "fan"
    gpu = device.property("gpu_usage")
    assert gpu is not None and gpu.desired is None and gpu.mqtt is None
    assert device.methods[0].property_names == ("fan_speed",)
    assert device.state_report_to_cloud and device.state_report_cycle_ms == 30000


def test_device_round_trip_through_get_device_shape() -> None:
    """device_to_pb then device_from_pb gives the same Device; twins carry both fields."""
    device = convert.device_from_pb(jetson_device())
    twins = [TwinValue("fan_speed", reported="48.5", observed_desired="50", metadata={"type": "float"})]
    message = convert.device_to_pb(device, twins)
    assert convert.device_from_pb(message) == device
    twin = message.status.twins[0]
    assert twin.HasField("reported") and twin.HasField("observedDesired")
    assert (twin.reported.value, twin.observedDesired.value) == ("48.5", "50")


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda d: setattr(d, "name", ""), "device.name is empty"),
    (lambda d: setattr(d.spec, "deviceModelReference", ""), "spec.deviceModelReference"),
    (lambda d: d.spec.properties.add(name="fan_speed"), r"properties\[2\]\.name 'fan_speed' is listed twice"),
    (lambda d: d.spec.properties.add(name=""), r"properties\[2\]\.name is empty"),
    (lambda d: setattr(d.spec.properties[0], "collectCycle", -1), r"properties\[0\]\.collectCycle"),
    (lambda d: setattr(d.spec.properties[0].pushMethod.mqtt, "qos", 3), "pushMethod.mqtt.qos"),
    (lambda d: d.spec.protocol.configData.data["bad"].CopyFrom(any_pb2.Any(type_url="x/y.Z")),
     r"spec\.protocol\.configData\.bad"),
])
def test_malformed_device_rejected(mutate: object, reason: str) -> None:
    """Malformed pb Devices raise DeviceRejected naming the field."""
    message = jetson_device()
    mutate(message)  # type: ignore[operator]
    with pytest.raises(DeviceRejected, match=reason):
        convert.device_from_pb(message)


def test_model_from_pb() -> None:
    """Model properties keep type, access mode and limits; empty type/access default to STRING/ReadOnly."""
    message = pb.DeviceModel(name="jetson-model", namespace="edge")
    message.spec.properties.add(name="fan_speed", type="FLOAT", accessMode="ReadWrite", minimum="0",
                                maximum="100", unit="%")
    message.spec.properties.add(name="board_model")
    model = convert.model_from_pb(message)
    fan = model.property("fan_speed")
    assert fan is not None and fan.writable and fan.maximum == "100" and fan.unit == "%"
    board = model.property("board_model")
    assert board is not None and board.type == "STRING" and not board.writable


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("type", "COMPLEX", r"properties\[0\]\.type 'COMPLEX'"),
    ("accessMode", "WriteOnly", r"properties\[0\]\.accessMode"),
    ("name", "", r"properties\[0\]\.name is empty"),
])
def test_malformed_model_rejected(field: str, value: str, reason: str) -> None:
    """Bad model properties raise DeviceRejected naming the field."""
    message = pb.DeviceModel(name="m", namespace="edge")
    prop = message.spec.properties.add(name="p", type="INT")
    setattr(prop, field, value)
    with pytest.raises(DeviceRejected, match=reason):
        convert.model_from_pb(message)
