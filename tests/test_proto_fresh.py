"""Committed generated code matches proto/api.proto; the proto matches KubeEdge v1.23.1 on the wire."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor

from mapper.dmi import regenerate
from mapper.dmi.generated import api_pb2 as pb

F = FieldDescriptor
# (message, field) -> (number, type, repeated), transcribed from KubeEdge v1.23.1
# staging/src/github.com/kubeedge/api/apis/dmi/v1beta1/api.proto.
WIRE_TABLE: dict[tuple[str, str], tuple[int, int, bool]] = {
    ("MapperRegisterRequest", "withData"): (1, F.TYPE_BOOL, False),
    ("MapperRegisterRequest", "mapper"): (2, F.TYPE_MESSAGE, False),
    ("MapperRegisterResponse", "modelList"): (1, F.TYPE_MESSAGE, True),
    ("MapperRegisterResponse", "deviceList"): (2, F.TYPE_MESSAGE, True),
    ("DeviceModel", "name"): (1, F.TYPE_STRING, False),
    ("DeviceModel", "spec"): (2, F.TYPE_MESSAGE, False),
    ("DeviceModel", "namespace"): (3, F.TYPE_STRING, False),
    ("DeviceModelSpec", "properties"): (1, F.TYPE_MESSAGE, True),
    ("DeviceModelSpec", "commands"): (2, F.TYPE_MESSAGE, True),
    ("ModelProperty", "accessMode"): (4, F.TYPE_STRING, False),
    ("ModelProperty", "unit"): (7, F.TYPE_STRING, False),
    ("DeviceCommand", "status_code"): (4, F.TYPE_STRING, True),
    ("DeviceCommand", "response"): (6, F.TYPE_BYTES, False),
    ("Device", "name"): (1, F.TYPE_STRING, False),
    ("Device", "spec"): (2, F.TYPE_MESSAGE, False),
    ("Device", "status"): (3, F.TYPE_MESSAGE, False),
    ("Device", "namespace"): (4, F.TYPE_STRING, False),
    ("DeviceSpec", "deviceModelReference"): (1, F.TYPE_STRING, False),
    ("DeviceSpec", "protocol"): (2, F.TYPE_MESSAGE, False),
    ("DeviceSpec", "properties"): (3, F.TYPE_MESSAGE, True),
    ("DeviceSpec", "methods"): (4, F.TYPE_MESSAGE, True),
    ("DeviceMethod", "propertyNames"): (3, F.TYPE_STRING, True),
    ("DeviceProperty", "desired"): (2, F.TYPE_MESSAGE, False),
    ("DeviceProperty", "visitors"): (3, F.TYPE_MESSAGE, False),
    ("DeviceProperty", "reportCycle"): (4, F.TYPE_INT64, False),
    ("DeviceProperty", "collectCycle"): (5, F.TYPE_INT64, False),
    ("DeviceProperty", "reportToCloud"): (6, F.TYPE_BOOL, False),
    ("DeviceProperty", "pushMethod"): (7, F.TYPE_MESSAGE, False),
    ("ProtocolConfig", "configData"): (2, F.TYPE_MESSAGE, False),
    ("VisitorConfig", "configData"): (2, F.TYPE_MESSAGE, False),
    ("PushMethod", "http"): (1, F.TYPE_MESSAGE, False),
    ("PushMethod", "mqtt"): (2, F.TYPE_MESSAGE, False),
    ("PushMethod", "dbMethod"): (3, F.TYPE_MESSAGE, False),
    ("PushMethod", "otel"): (4, F.TYPE_MESSAGE, False),
    ("PushMethod", "anomalyDetection"): (5, F.TYPE_MESSAGE, False),
    ("PushMethodHTTP", "port"): (2, F.TYPE_INT64, False),
    ("PushMethodHTTP", "requestpath"): (3, F.TYPE_STRING, False),
    ("PushMethodMQTT", "address"): (1, F.TYPE_STRING, False),
    ("PushMethodMQTT", "topic"): (2, F.TYPE_STRING, False),
    ("PushMethodMQTT", "qos"): (3, F.TYPE_INT32, False),
    ("PushMethodMQTT", "retained"): (4, F.TYPE_BOOL, False),
    ("PushMethodOTEL", "endpointURL"): (1, F.TYPE_STRING, False),
    ("DBMethod", "tdengine"): (3, F.TYPE_MESSAGE, False),
    ("DBMethod", "mysql"): (4, F.TYPE_MESSAGE, False),
    ("RedisClientConfig", "minIdleConns"): (4, F.TYPE_INT32, False),
    ("TDEngineClientConfig", "dbname"): (2, F.TYPE_STRING, False),
    ("MySQLClientConfig", "userName"): (3, F.TYPE_STRING, False),
    ("DBMethodOTEL", "otelExporterConfig"): (1, F.TYPE_MESSAGE, False),
    ("MapperInfo", "name"): (1, F.TYPE_STRING, False),
    ("MapperInfo", "api_version"): (3, F.TYPE_STRING, False),
    ("MapperInfo", "protocol"): (4, F.TYPE_STRING, False),
    ("MapperInfo", "address"): (5, F.TYPE_BYTES, False),
    ("MapperInfo", "state"): (6, F.TYPE_STRING, False),
    ("ReportDeviceStatusRequest", "deviceName"): (1, F.TYPE_STRING, False),
    ("ReportDeviceStatusRequest", "reportedDevice"): (2, F.TYPE_MESSAGE, False),
    ("ReportDeviceStatusRequest", "deviceNamespace"): (3, F.TYPE_STRING, False),
    ("ReportDeviceStatesRequest", "deviceNamespace"): (2, F.TYPE_STRING, False),
    ("ReportDeviceStatesRequest", "state"): (3, F.TYPE_STRING, False),
    ("DeviceStatus", "twins"): (1, F.TYPE_MESSAGE, True),
    ("DeviceStatus", "reportToCloud"): (2, F.TYPE_BOOL, False),
    ("DeviceStatus", "reportCycle"): (3, F.TYPE_INT64, False),
    ("Twin", "propertyName"): (1, F.TYPE_STRING, False),
    ("Twin", "observedDesired"): (2, F.TYPE_MESSAGE, False),
    ("Twin", "reported"): (3, F.TYPE_MESSAGE, False),
    ("TwinProperty", "value"): (1, F.TYPE_STRING, False),
    ("RegisterDeviceResponse", "deviceNamespace"): (2, F.TYPE_STRING, False),
    ("CreateDeviceModelResponse", "deviceModelName"): (1, F.TYPE_STRING, False),
    ("CreateDeviceModelResponse", "deviceModelNamespace"): (2, F.TYPE_STRING, False),
    ("RemoveDeviceModelRequest", "modelName"): (1, F.TYPE_STRING, False),
    ("RemoveDeviceModelRequest", "modelNamespace"): (2, F.TYPE_STRING, False),
    ("GetDeviceRequest", "deviceNamespace"): (2, F.TYPE_STRING, False),
}
SERVICES = {
    "DeviceManagerService": ["MapperRegister", "ReportDeviceStatus", "ReportDeviceStates"],
    "DeviceMapperService": ["RegisterDevice", "RemoveDevice", "UpdateDevice", "CreateDeviceModel",
                            "RemoveDeviceModel", "UpdateDeviceModel", "GetDevice"],
}
MESSAGE_COUNT = 52


def test_generated_code_is_fresh() -> None:
    """Regenerating into a temp dir reproduces the committed files byte for byte."""
    out = Path(tempfile.mkdtemp(prefix="jmgen"))
    written = regenerate.regenerate(out)
    assert len(written) == 4
    for path in written:
        committed = regenerate.GENERATED_DIR / path.name
        stale = f"{path.name} is stale: run python -m mapper.dmi.regenerate"
        assert committed.read_bytes() == path.read_bytes(), stale


def test_grpc_module_imports_messages_relatively() -> None:
    """The grpc module imports api_pb2 from its own package."""
    text = (regenerate.GENERATED_DIR / "api_pb2_grpc.py").read_text()
    assert "from . import api_pb2 as api__pb2" in text
    assert "\nimport api_pb2" not in text


def test_package_and_services() -> None:
    """Package v1beta1, both services with their methods in upstream order."""
    assert pb.DESCRIPTOR.package == "v1beta1"
    for service_name, methods in SERVICES.items():
        service = pb.DESCRIPTOR.services_by_name[service_name]
        assert [m.name for m in service.methods] == methods
        assert service.full_name == f"v1beta1.{service_name}"
    register = pb.DESCRIPTOR.services_by_name["DeviceManagerService"].methods_by_name["MapperRegister"]
    assert register.input_type.name == "MapperRegisterRequest"
    assert register.output_type.name == "MapperRegisterResponse"


@pytest.mark.parametrize(("message", "field"), sorted(WIRE_TABLE))
def test_wire_fields(message: str, field: str) -> None:
    """Each listed field has the upstream number, type and cardinality."""
    number, kind, repeated = WIRE_TABLE[(message, field)]
    descriptor = pb.DESCRIPTOR.message_types_by_name[message].fields_by_name[field]
    assert descriptor.number == number
    assert descriptor.type == kind
    assert descriptor.is_repeated == repeated


def test_config_maps_hold_any() -> None:
    """configData / anomalyDetection are map<string, google.protobuf.Any>."""
    for message in ("CustomizedValue", "AnomalyDetection"):
        data = pb.DESCRIPTOR.message_types_by_name[message].fields_by_name["data"]
        assert data.message_type.GetOptions().map_entry
        assert data.message_type.fields_by_name["value"].message_type.full_name == "google.protobuf.Any"


def test_message_count() -> None:
    """No message missing or invented (upstream declares 52 top-level messages)."""
    assert len(pb.DESCRIPTOR.message_types_by_name) == MESSAGE_COUNT
