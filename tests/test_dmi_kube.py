"""Standalone manifests -> pb messages the way EdgeCore converts them, then through convert.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from common import shared_dir, shared_missing, shared_root
from google.protobuf import wrappers_pb2

from mapper.devices.model import DeviceRejected
from mapper.dmi import convert
from mapper.dmi.manifests import load_manifests

# Unmodified upstream examples in the shared data folder (not vendored into the repo).
MISSING = shared_missing("kubeedge-examples")
UPSTREAM_FILES = [] if MISSING else sorted(shared_root().joinpath("kubeedge-examples").glob("*/*.yaml"))
needs_examples = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

JETSON = textwrap.dedent("""\
    apiVersion: devices.kubeedge.io/v1beta1
    kind: DeviceModel
    metadata:
      name: jetson-model
      namespace: edge
    spec:
      protocol: jetson
      properties:
        - name: gpu_usage
          type: FLOAT
          accessMode: ReadOnly
          unit: "%"
        - name: fan_speed
          type: FLOAT
          accessMode: ReadWrite
          minimum: "0"
          maximum: "100"
    ---
    apiVersion: devices.kubeedge.io/v1beta1
    kind: Device
    metadata:
      name: xavier
      namespace: edge
    spec:
      deviceModelRef:
        name: jetson-model
      nodeName: edge-1
      protocol:
        protocolName: jetson
        configData:
          interval: 3
          verbose: true
          since: 2024-01-01
      properties:
        - name: fan_speed
          desired:
            value: "50"
          visitors:
            protocolName: jetson
            configData:
              reading: fan.speed
          reportCycle: 10000
          collectCycle: 2000
          reportToCloud: true
          pushMethod:
            mqtt:
              address: tcp://127.0.0.1:1883
              topic: jetson/edge/xavier/fan_speed
              qos: 1
      stateReport:
        reportToCloud: true
        reportCycle: 30000
    status:
      reportToCloud: false
      reportCycle: 5000
    """)


def write(directory: Path, name: str, text: str) -> Path:
    """Write a manifest file."""
    path = directory / name
    path.write_text(text)
    return path


@needs_examples
@pytest.mark.parametrize("path", UPSTREAM_FILES or [None], ids=lambda p: p.name if p else "none")
def test_upstream_examples_convert(path: Path) -> None:
    """Every upstream example (other protocols too) loads and passes convert.py."""
    assert UPSTREAM_FILES, "kubeedge-examples holds no */*.yaml"
    models, devices = load_manifests([path])
    assert len(models) + len(devices) == 1
    for model in models:
        assert convert.model_from_pb(model).properties
    for device in devices:
        converted = convert.device_from_pb(device)
        assert converted.model_name and converted.properties


@needs_examples
def test_upstream_numbers_become_float_values() -> None:
    """vled: numbers in configData arrive as FloatValue, strings as StringValue; huge cycles kept as given."""
    (device,) = load_manifests([shared_dir("kubeedge-examples") / "kubeedge-examples" / "vled-instance.yaml"])[1]
    data = device.spec.protocol.configData.data
    assert data["baudRate"].Is(wrappers_pb2.FloatValue.DESCRIPTOR)
    assert data["serialPort"].Is(wrappers_pb2.StringValue.DESCRIPTOR)
    converted = convert.device_from_pb(device)
    assert converted.namespace == "default"
    assert converted.protocol_config["baudRate"] == 9600.0
    assert converted.properties[0].report_cycle_ms == 1_000_000_000
    assert converted.properties[0].mqtt is not None
    assert [t.reported.value for t in device.status.twins] == ["100"]


@needs_examples
def test_counter_null_config_data() -> None:
    """counter-instance: `configData:` null gives an empty config."""
    (device,) = load_manifests([shared_dir("kubeedge-examples") / "kubeedge-examples" / "counter-instance.yaml"])[1]
    assert convert.device_from_pb(device).protocol_config == {}


def test_jetson_manifest(tmp_path: Path) -> None:
    """A multi-document Jetson file: model + device, stateReport wins over the v1.22 status fields."""
    models, devices = load_manifests([write(tmp_path, "jetson.yaml", JETSON)])
    model = convert.model_from_pb(models[0])
    assert model.key == ("edge", "jetson-model") and model.property("fan_speed").writable  # type: ignore[union-attr]
    device = convert.device_from_pb(devices[0])
    assert device.protocol == "jetson" and device.model_name == "jetson-model"
    assert device.protocol_config == {"interval": 3.0, "verbose": True, "since": "2024-01-01"}
    fan = device.property("fan_speed")
    assert fan is not None and fan.desired == "50" and fan.visitor_config == {"reading": "fan.speed"}
    assert fan.mqtt is not None and fan.mqtt.qos == 1
    assert (device.state_report_to_cloud, device.state_report_cycle_ms) == (True, 30000)
    interval = convert.decode_any(devices[0].spec.protocol.configData.data["interval"])
    assert convert.coerce_value(interval, "INT") == 3


def test_v122_status_fields_without_state_report(tmp_path: Path) -> None:
    """Without spec.stateReport the v1.22 status.reportToCloud/reportCycle reach pb status."""
    text = JETSON.replace("  stateReport:\n    reportToCloud: true\n    reportCycle: 30000\n", "")
    text = text.replace(
        "reportToCloud: false\n  reportCycle: 5000", "reportToCloud: true\n  reportCycle: 5000"
    )
    device = convert.device_from_pb(load_manifests([write(tmp_path, "d.yaml", text)])[1][0])
    assert (device.state_report_to_cloud, device.state_report_cycle_ms) == (True, 5000)


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        ("interval: 3", "interval: {seconds: 3}", r"spec\.protocol\.configData\.interval: dict"),
        ("interval: 3", "interval: [1, 2]", r"configData\.interval: list"),
        ("interval: 3", "interval:", r"configData\.interval: null"),
        ('value: "50"', "value: 50", r"properties\[0\]\.desired\.value: expected a string"),
        ("reportCycle: 10000", "reportCycle: often", r"properties\[0\]\.reportCycle: expected an integer"),
        ('minimum: "0"', "minimum: 0", r"properties\[1\]\.minimum: expected a string"),
        ("kind: Device\n", "kind: Pod\n", "got devices.kubeedge.io/v1beta1/Pod"),
    ],
)
def test_problems_are_named(tmp_path: Path, old: str, new: str, reason: str) -> None:
    """Impossible values raise DeviceRejected naming the file and the field."""
    path = write(tmp_path, "bad.yaml", JETSON.replace(old, new, 1))
    with pytest.raises(DeviceRejected, match=reason) as caught:
        load_manifests([path])
    assert str(path) in str(caught.value)


def test_all_problems_listed_together(tmp_path: Path) -> None:
    """Problems from several files and duplicates come in one error."""
    broken = write(tmp_path, "broken.yaml", "kind: [unclosed\n")
    first = write(tmp_path, "a.yaml", JETSON)
    second = write(tmp_path, "b.yaml", JETSON.replace("interval: 3", "interval: {x: 1}"))
    with pytest.raises(DeviceRejected) as caught:
        load_manifests([broken, first, second, first])
    message = str(caught.value)
    assert "broken.yaml: cannot read YAML" in message
    assert "b.yaml: Device edge/xavier: spec.protocol.configData.interval" in message
    assert "Device edge/xavier is declared more than once" in message


def test_kube_does_not_import_grpc() -> None:
    """Standalone loading works without grpc (protobuf only)."""
    code = "import sys, mapper.dmi.manifests; assert 'grpc' not in sys.modules, 'grpc imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
