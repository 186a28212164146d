"""Pure conversions between DMI v1beta1 protobuf messages and the internal model."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence

from google.protobuf import any_pb2, wrappers_pb2
from google.protobuf.message import DecodeError

from mapper.devices.limits import MAX_METHODS, MAX_PROPERTIES, shown
from mapper.devices.model import (
    PROPERTY_TYPES,
    READ_ONLY,
    READ_WRITE,
    ConfigValue,
    Device,
    DeviceMethod,
    DeviceModel,
    DeviceProperty,
    DeviceRejected,
    ModelProperty,
    TwinValue,
)
from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.pushmethods import push_from_pb, push_to_pb

_WRAPPERS: dict[str, type[wrappers_pb2.StringValue | wrappers_pb2.BoolValue | wrappers_pb2.Int32Value
                         | wrappers_pb2.Int64Value | wrappers_pb2.FloatValue | wrappers_pb2.DoubleValue]] = {
    "google.protobuf.StringValue": wrappers_pb2.StringValue,
    "google.protobuf.BoolValue": wrappers_pb2.BoolValue,
    "google.protobuf.Int32Value": wrappers_pb2.Int32Value,
    "google.protobuf.Int64Value": wrappers_pb2.Int64Value,
    "google.protobuf.FloatValue": wrappers_pb2.FloatValue,
    "google.protobuf.DoubleValue": wrappers_pb2.DoubleValue,
}
_TRUE_WORDS = ("true", "1", "on", "yes")
_FALSE_WORDS = ("false", "0", "off", "no")


def decode_any(value: any_pb2.Any, where: str = "configData") -> ConfigValue:
    """Unpack a google.protobuf wrapper inside Any; FloatValue stays a float (3.0 stays 3.0)."""
    type_name = value.type_url.rsplit("/", 1)[-1]
    wrapper_type = _WRAPPERS.get(type_name)
    if wrapper_type is None:
        raise DeviceRejected(f"{where}: unsupported value type {type_name or '<empty type_url>'!r}")
    wrapper = wrapper_type()
    try:
        wrapper.ParseFromString(value.value)
    except DecodeError as exc:
        raise DeviceRejected(f"{where}: undecodable {type_name}: {exc}") from exc
    if isinstance(wrapper, wrappers_pb2.FloatValue):
        return shortest_float32(wrapper.value)
    return wrapper.value


def shortest_float32(value: float) -> float:
    """The shortest decimal that is the same 32-bit float (0.1f decodes as 0.1, not 0.10000000149)."""
    if not math.isfinite(value):
        return value
    target = struct.pack("<f", value)
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == target:
            return candidate
    return value


def encode_any(value: ConfigValue) -> any_pb2.Any:
    """Pack a config value the way EdgeCore would hand it over (ints as Int64Value)."""
    packed = any_pb2.Any()
    if isinstance(value, bool):
        packed.Pack(wrappers_pb2.BoolValue(value=value))
    elif isinstance(value, int):
        packed.Pack(wrappers_pb2.Int64Value(value=value))
    elif isinstance(value, float):
        packed.Pack(wrappers_pb2.FloatValue(value=value))
    else:
        packed.Pack(wrappers_pb2.StringValue(value=value))
    return packed


def decode_config(data: Mapping[str, any_pb2.Any], where: str) -> dict[str, ConfigValue]:
    """Decode every entry of a CustomizedValue map; keys are kept as given."""
    return {key: decode_any(data[key], f"{where}.{key}") for key in sorted(data)}


def coerce_value(value: ConfigValue, prop_type: str) -> ConfigValue:
    """Convert a decoded value to the Python type of a model property type (INT 3.0 -> 3)."""
    kind = prop_type.upper()
    try:
        if kind == "INT":
            return _to_int(value)
        if kind in ("FLOAT", "DOUBLE"):
            return float(value)
        if kind == "BOOLEAN":
            return _to_bool(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DeviceRejected(f"value {value!r} is not a valid {kind}") from exc
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_int(value: ConfigValue) -> int:
    """An int from an int, an integral float or a decimal string."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("not integral")
        return int(value)
    if isinstance(value, int):
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        return _to_int(float(text))


def _to_bool(value: ConfigValue) -> bool:
    """A bool from a bool, 0/1 or a true/false word."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return bool(value)
        raise ValueError("not 0 or 1")
    word = value.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ValueError("not a boolean word")


def model_from_pb(message: pb.DeviceModel) -> DeviceModel:
    """Internal DeviceModel from a pb DeviceModel; DeviceRejected names the bad field."""
    if not message.name:
        raise DeviceRejected("deviceModel.name is empty")
    where = f"deviceModel {message.namespace}/{message.name}"
    if len(message.spec.properties) > MAX_PROPERTIES:
        raise DeviceRejected(f"{where}: {len(message.spec.properties)} properties; the mapper takes at most "
                             f"{MAX_PROPERTIES} per model")
    properties: list[ModelProperty] = []
    names: set[str] = set()
    for index, prop in enumerate(message.spec.properties):
        field = f"{where}: spec.properties[{index}]"
        if not prop.name:
            raise DeviceRejected(f"{field}.name is empty")
        if prop.name in names:
            raise DeviceRejected(f"{field}.name {shown(prop.name)} is declared twice")
        names.add(prop.name)
        prop_type = (prop.type or "STRING").upper()
        if prop_type not in PROPERTY_TYPES:
            raise DeviceRejected(f"{field}.type {prop.type!r} is not one of {', '.join(PROPERTY_TYPES)}")
        access = prop.accessMode or READ_ONLY
        if access not in (READ_ONLY, READ_WRITE):
            raise DeviceRejected(f"{field}.accessMode {prop.accessMode!r} is not ReadOnly or ReadWrite")
        properties.append(ModelProperty(
            name=prop.name, type=prop_type, access_mode=access, minimum=prop.minimum,
            maximum=prop.maximum, unit=prop.unit, description=prop.description,
        ))
    return DeviceModel(namespace=message.namespace, name=message.name, properties=tuple(properties))


def device_from_pb(message: pb.Device) -> Device:
    """Internal Device from a pb Device; cycles stay in ms as given; DeviceRejected names the bad field."""
    if not message.name:
        raise DeviceRejected("device.name is empty")
    where = f"device {message.namespace}/{message.name}"
    spec = message.spec
    if not spec.deviceModelReference:
        raise DeviceRejected(f"{where}: spec.deviceModelReference is empty")
    for count, what, limit in ((len(spec.properties), "properties", MAX_PROPERTIES),
                               (len(spec.methods), "methods", MAX_METHODS)):
        if count > limit:
            raise DeviceRejected(f"{where}: {count} {what}; the mapper takes at most {limit} per device")
    protocol_config = decode_config(spec.protocol.configData.data, f"{where}: spec.protocol.configData")
    properties: list[DeviceProperty] = []
    names: set[str] = set()
    for index, prop in enumerate(spec.properties):
        field = f"{where}: spec.properties[{index}]"
        if not prop.name:
            raise DeviceRejected(f"{field}.name is empty")
        if prop.name in names:
            raise DeviceRejected(f"{field}.name {shown(prop.name)} is listed twice")
        names.add(prop.name)
        properties.append(_property_from_pb(prop, field))
    methods = tuple(
        DeviceMethod(name=m.name, description=m.description, property_names=tuple(m.propertyNames))
        for m in spec.methods
    )
    for index, method in enumerate(methods):
        if not method.name:
            raise DeviceRejected(f"{where}: spec.methods[{index}].name is empty")
    if message.status.reportCycle < 0:
        raise DeviceRejected(f"{where}: status.reportCycle {message.status.reportCycle} is negative")
    return Device(
        namespace=message.namespace, name=message.name, model_name=spec.deviceModelReference,
        protocol=spec.protocol.protocolName, protocol_config=protocol_config,
        properties=tuple(properties), methods=methods,
        state_report_to_cloud=message.status.reportToCloud,
        state_report_cycle_ms=message.status.reportCycle,
    )


def _property_from_pb(prop: pb.DeviceProperty, field: str) -> DeviceProperty:
    """One internal DeviceProperty; `field` names it in errors."""
    for cycle_name in ("reportCycle", "collectCycle"):
        if getattr(prop, cycle_name) < 0:
            raise DeviceRejected(f"{field}.{cycle_name} {getattr(prop, cycle_name)} is negative")
    push = push_from_pb(prop, field)
    desired = prop.desired.value if prop.HasField("desired") and prop.desired.value != "" else None
    return DeviceProperty(
        name=prop.name, desired=desired, visitor_protocol=prop.visitors.protocolName,
        visitor_config=decode_config(prop.visitors.configData.data, f"{field}.visitors.configData"),
        report_cycle_ms=prop.reportCycle, collect_cycle_ms=prop.collectCycle,
        report_to_cloud=prop.reportToCloud, **push,  # type: ignore[arg-type]
    )


def twins_to_pb(twins: Sequence[TwinValue]) -> list[pb.Twin]:
    """pb Twins with both `reported` and `observedDesired` always set."""
    return [
        pb.Twin(
            propertyName=twin.property_name,
            reported=pb.TwinProperty(value=twin.reported, metadata=dict(twin.metadata)),
            observedDesired=pb.TwinProperty(value=twin.observed_desired, metadata=dict(twin.metadata)),
        )
        for twin in twins
    ]


def device_to_pb(device: Device, twins: Sequence[TwinValue]) -> pb.Device:
    """A pb Device (spec and status with twins) for GetDevice answers."""
    message = pb.Device(name=device.name, namespace=device.namespace)
    spec = message.spec
    spec.deviceModelReference = device.model_name
    spec.protocol.protocolName = device.protocol
    for key, value in device.protocol_config.items():
        spec.protocol.configData.data[key].CopyFrom(encode_any(value))
    for prop in device.properties:
        item = spec.properties.add(
            name=prop.name, reportCycle=prop.report_cycle_ms, collectCycle=prop.collect_cycle_ms,
            reportToCloud=prop.report_to_cloud,
        )
        if prop.desired is not None:
            item.desired.value = prop.desired
        item.visitors.protocolName = prop.visitor_protocol
        for key, value in prop.visitor_config.items():
            item.visitors.configData.data[key].CopyFrom(encode_any(value))
        push_to_pb(prop, item)
    for method in device.methods:
        spec.methods.add(name=method.name, description=method.description,
                         propertyNames=list(method.property_names))
    message.status.twins.extend(twins_to_pb(twins))
    message.status.reportToCloud = device.state_report_to_cloud
    message.status.reportCycle = device.state_report_cycle_ms
    return message


def register_reply_to_model(
    reply: pb.MapperRegisterResponse,
) -> tuple[list[DeviceModel], list[Device], list[str]]:
    """Models and devices from a MapperRegister reply, plus one message per item that failed to convert."""
    models: dict[tuple[str, str], DeviceModel] = {}
    devices: list[Device] = []
    errors: list[str] = []
    for model_message in reply.modelList:
        try:
            model = model_from_pb(model_message)
        except DeviceRejected as exc:
            errors.append(str(exc))
            continue
        models[model.key] = model
    for device_message in reply.deviceList:
        try:
            devices.append(device_from_pb(device_message))
        except DeviceRejected as exc:
            errors.append(str(exc))
    return list(models.values()), devices, errors
