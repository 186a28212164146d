"""Standalone mode input: Device and DeviceModel YAML (as users kubectl-apply them) to DMI pb messages.

The conversion follows EdgeCore's dtcommon.ConvertDevice / ConvertDeviceModel (v1.23.1): the CRD's JSON is
decoded into the pb structs with Go's case-insensitive key matching (unknown keys ignored), every configData
number becomes a 32-bit FloatValue, strings StringValue, booleans BoolValue, and nested maps, lists or nulls
are refused. `spec.stateReport` (1.23) wins over the older `status.reportToCloud/reportCycle` (1.22).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import any_pb2, wrappers_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mapper.devices.model import DeviceRejected
from mapper.dmi.generated import api_pb2 as pb

API_VERSION = "devices.kubeedge.io/v1beta1"
DEFAULT_NAMESPACE = "default"
_ANY_MAPS = ("v1beta1.CustomizedValue", "v1beta1.AnomalyDetection")
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
}
_YAML_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _ManifestLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as the strings Kubernetes would see."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _YAML_TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Problem(Exception):
    """One conversion problem, located by a field path."""


def load_manifests(paths: Sequence[Path]) -> tuple[list[pb.DeviceModel], list[pb.Device]]:
    """pb DeviceModels and Devices from YAML files; DeviceRejected lists every problem by file."""
    models: list[pb.DeviceModel] = []
    devices: list[pb.Device] = []
    problems: list[str] = []
    for path in paths:
        try:
            documents = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_ManifestLoader))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot read YAML: {exc}")
            continue
        for index, document in enumerate(documents):
            if document is None:
                continue
            for item in _expand_lists(document):
                _convert_document(path, index, item, models, devices, problems)
    problems.extend(_duplicates(models, devices))
    if problems:
        raise DeviceRejected("invalid Device/DeviceModel manifests:\n  " + "\n  ".join(problems))
    return models, devices


def _expand_lists(document: Any) -> list[Any]:
    """The items of a `kind: List`/`DeviceList`/`DeviceModelList` document, or the document itself."""
    if isinstance(document, Mapping) and str(document.get("kind", "")).endswith("List"):
        items = document.get("items")
        return list(items) if isinstance(items, list) else [document]
    return [document]


def _convert_document(path: Path, index: int, document: Any, models: list[pb.DeviceModel],
                      devices: list[pb.Device], problems: list[str]) -> None:
    """Convert one document, appending the result or a located problem."""
    where = f"{path} (document {index + 1})"
    if not isinstance(document, Mapping):
        problems.append(f"{where}: not a mapping")
        return
    kind, api_version = document.get("kind"), document.get("apiVersion")
    if api_version != API_VERSION or kind not in ("Device", "DeviceModel"):
        problems.append(f"{where}: expected apiVersion {API_VERSION} and kind Device or DeviceModel, "
                        f"got {api_version}/{kind}")
        return
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = (metadata.get("namespace") if isinstance(metadata, Mapping) else None) or DEFAULT_NAMESPACE
    if not isinstance(name, str) or not name or not isinstance(namespace, str):
        problems.append(f"{where}: metadata.name (and metadata.namespace if given) must be strings")
        return
    where = f"{path}: {kind} {namespace}/{name}"
    try:
        if kind == "Device":
            devices.append(device_to_pb(document, name, namespace))
        else:
            models.append(model_to_pb(document, name, namespace))
    except _Problem as problem:
        problems.append(f"{where}: {problem}")


def device_to_pb(document: Mapping[str, Any], name: str, namespace: str) -> pb.Device:
    """A pb Device from a Device manifest, the way EdgeCore's ConvertDevice builds it."""
    message = pb.Device()
    _fill(message, document, "")
    spec = document.get("spec") or {}
    model_ref = spec.get("deviceModelRef") if isinstance(spec, Mapping) else None
    if isinstance(model_ref, Mapping):
        if not isinstance(model_ref.get("name", ""), str):
            raise _Problem("spec.deviceModelRef.name must be a string")
        message.spec.deviceModelReference = model_ref.get("name", "")
    state_report = spec.get("stateReport") if isinstance(spec, Mapping) else None
    if isinstance(state_report, Mapping):
        scratch = pb.DeviceStatus()
        _fill(scratch, state_report, "spec.stateReport.")
        message.status.reportCycle = scratch.reportCycle
        message.status.reportToCloud = scratch.reportToCloud
    message.name, message.namespace = name, namespace
    return message


def model_to_pb(document: Mapping[str, Any], name: str, namespace: str) -> pb.DeviceModel:
    """A pb DeviceModel from a DeviceModel manifest (spec.protocol and visitors have no pb field)."""
    message = pb.DeviceModel()
    _fill(message, document, "")
    message.name, message.namespace = name, namespace
    return message


def _fill(message: Message, data: Mapping[str, Any], where: str) -> None:
    """Set the fields of `message` from JSON-like `data`, matching keys case-insensitively like Go."""
    fields = {field.name.lower(): field for field in message.DESCRIPTOR.fields}
    for key, value in data.items():
        field = fields.get(str(key).lower())
        if field is None or value is None:
            continue
        path = f"{where}{key}"
        if field.message_type is not None and field.message_type.full_name in _ANY_MAPS:
            _fill_any_map(getattr(message, field.name).data, value, path)
        elif field.message_type is not None and field.message_type.GetOptions().map_entry:
            _fill_string_map(getattr(message, field.name), value, path)
        elif field.is_repeated:
            if not isinstance(value, list):
                raise _Problem(f"{path}: expected a list, got {type(value).__name__}")
            target = getattr(message, field.name)
            for position, element in enumerate(value):
                item_path = f"{path}[{position}]"
                if field.message_type is not None:
                    _fill(target.add(), _require_mapping(element, item_path), item_path + ".")
                else:
                    target.append(_scalar(field.type, element, item_path))
        elif field.message_type is not None:
            child = getattr(message, field.name)
            child.SetInParent()
            _fill(child, _require_mapping(value, path), path + ".")
        else:
            setattr(message, field.name, _scalar(field.type, value, path))


def _require_mapping(value: Any, path: str) -> Mapping[str, Any]:
    """`value` if it is a mapping."""
    if not isinstance(value, Mapping):
        raise _Problem(f"{path}: expected a mapping, got {type(value).__name__}")
    return value


def _fill_any_map(target: Any, value: Any, path: str) -> None:
    """configData-like maps: each value packed the way EdgeCore's dataToAny does."""
    for key, item in _require_mapping(value, path).items():
        target[str(key)].CopyFrom(config_value_to_any(item, f"{path}.{key}"))


def config_value_to_any(value: Any, path: str = "configData") -> any_pb2.Any:
    """EdgeCore's dataToAny after a JSON round trip: every number a 32-bit FloatValue."""
    packed = any_pb2.Any()
    if isinstance(value, bool):
        packed.Pack(wrappers_pb2.BoolValue(value=value))
    elif isinstance(value, (int, float)):
        packed.Pack(wrappers_pb2.FloatValue(value=float(value)))
    elif isinstance(value, str):
        packed.Pack(wrappers_pb2.StringValue(value=value))
    else:
        kind = "null" if value is None else type(value).__name__
        raise _Problem(f"{path}: {kind} values are not supported (only strings, numbers and booleans)")
    return packed


def _fill_string_map(target: Any, value: Any, path: str) -> None:
    """map<string, string> fields (twin metadata, influx tags)."""
    for key, item in _require_mapping(value, path).items():
        if not isinstance(item, str):
            raise _Problem(f"{path}.{key}: expected a string, got {type(item).__name__}")
        target[str(key)] = item


def _scalar(kind: int, value: Any, path: str) -> Any:
    """A scalar checked against the protobuf field type `kind` like Go's encoding/json would."""
    if kind == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise _Problem(f"{path}: expected a string, got {type(value).__name__} {value!r} (quote it)")
        return value
    if kind == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _Problem(f"{path}: expected true or false, got {value!r}")
        return value
    if kind in _INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        low, high = _INT_RANGES[kind]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Problem(f"{path}: expected an integer, got {value!r}")
        return value
    if kind == FieldDescriptor.TYPE_BYTES:
        try:
            return base64.b64decode(str(value), validate=True)
        except binascii.Error as exc:
            raise _Problem(f"{path}: expected base64 bytes: {exc}") from exc
    raise _Problem(f"{path}: unsupported field type {kind}")


def _duplicates(models: Sequence[pb.DeviceModel], devices: Sequence[pb.Device]) -> list[str]:
    """One problem per Device or DeviceModel declared more than once."""
    problems: list[str] = []
    for kind, keys in (("DeviceModel", [(m.namespace, m.name) for m in models]),
                       ("Device", [(d.namespace, d.name) for d in devices])):
        for key in sorted({k for k in keys if keys.count(k) > 1}):
            problems.append(f"{kind} {key[0]}/{key[1]} is declared more than once")
    return problems
