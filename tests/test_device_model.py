"""The shipped DeviceModel and Device files: valid against upstream CRDs and consistent with the catalogue."""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from deploy_support import REPO_ROOT, crd_schema, load_documents

from mapper.readings.keys import documented_key

DEVICE_MODEL_DIR = REPO_ROOT / "device-model"
MODEL_FILE = DEVICE_MODEL_DIR / "jetson-model.yaml"
DEVICE_FILES = sorted(p for p in DEVICE_MODEL_DIR.glob("*.yaml") if p != MODEL_FILE)
STATE_REPORT_PATCH = DEVICE_MODEL_DIR / "v1.23" / "state-report-patch.yaml"
KUBEEDGE_VERSIONS = ("v1.22.2", "v1.23.1")
WRITABLE_DESIRED = {"nvpmodel", "jetson_clocks", "fan_profile", "fan_speed"}


def model() -> dict[str, Any]:
    """The one DeviceModel document."""
    (document,) = load_documents(MODEL_FILE)
    return document


def devices() -> list[tuple[Path, dict[str, Any]]]:
    """Every Device document with its file."""
    return [(path, doc) for path in DEVICE_FILES for doc in load_documents(path)]


def test_the_demo_files_exist() -> None:
    names = {p.name for p in DEVICE_FILES}
    assert {"jetson-xavier.yaml", "jetson-orin-nano.yaml", "jetson-agx-orin.yaml"} <= names


@pytest.mark.parametrize("kubeedge", KUBEEDGE_VERSIONS)
def test_model_is_valid_against_the_crd(kubeedge: str) -> None:
    document = model()
    assert (document["apiVersion"], document["kind"]) == ("devices.kubeedge.io/v1beta1", "DeviceModel")
    jsonschema.validate(document, crd_schema(kubeedge, "devices_v1beta1_devicemodel.yaml"))


@pytest.mark.parametrize("kubeedge", KUBEEDGE_VERSIONS)
@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.name)
def test_device_is_valid_against_the_crd(kubeedge: str, path: Path) -> None:
    schema = crd_schema(kubeedge, "devices_v1beta1_device.yaml")
    for document in load_documents(path):
        assert (document["apiVersion"], document["kind"]) == ("devices.kubeedge.io/v1beta1", "Device")
        jsonschema.validate(document, schema)


def test_strict_schema_rejects_unknown_fields() -> None:
    (_, device), *_ = devices()
    misspelt = copy.deepcopy(device)
    misspelt["spec"]["properties"][0]["reportToCLoud"] = True
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(misspelt, crd_schema("v1.23.1", "devices_v1beta1_device.yaml"))


def test_state_report_patch_is_valid_on_1_23_only() -> None:
    (_, device), *_ = devices()
    (patch,) = load_documents(STATE_REPORT_PATCH)
    patched = copy.deepcopy(device)
    patched["spec"].update(patch["spec"])
    jsonschema.validate(patched, crd_schema("v1.23.1", "devices_v1beta1_device.yaml"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(patched, crd_schema("v1.22.2", "devices_v1beta1_device.yaml"))


def test_model_properties_equal_the_catalogue() -> None:
    catalogue = importlib.import_module("mapper.devices.catalogue").CATALOGUE
    declared = {
        p["name"]: (p["type"], p.get("unit", ""), p["accessMode"] == "ReadWrite") for p in model()["spec"]["properties"]
    }
    expected = {entry.name: (entry.type, entry.unit, entry.writable) for entry in catalogue}
    assert declared == expected
    assert all(p.get("description") for p in model()["spec"]["properties"])


def test_model_ranges_are_numbers_in_order() -> None:
    for prop in model()["spec"]["properties"]:
        if "minimum" in prop and "maximum" in prop:
            assert float(prop["minimum"]) < float(prop["maximum"]), prop["name"]


@pytest.mark.parametrize("path", DEVICE_FILES, ids=lambda p: p.name)
def test_device_fits_the_model_and_the_mapper(path: Path) -> None:
    model_properties = {p["name"]: p for p in model()["spec"]["properties"]}
    for device in (doc for p, doc in devices() if p == path):
        spec = device["spec"]
        assert spec["deviceModelRef"]["name"] == model()["metadata"]["name"]
        assert spec["protocol"]["protocolName"] == model()["spec"]["protocol"] == "jetson"
        assert spec["nodeName"]
        names = [p["name"] for p in spec["properties"]]
        assert len(names) == len(set(names)), "duplicate property"
        for prop in spec["properties"]:
            declared = model_properties.get(prop["name"])
            assert declared is not None, f"{prop['name']} is not in the model"
            assert prop["visitors"]["protocolName"] == "jetson"
            assert documented_key(prop["visitors"]["configData"]["reading"]), prop
            # Milliseconds: ten minutes at most, never a nanosecond-sized value.
            for cycle in ("collectCycle", "reportCycle"):
                assert 1000 <= prop[cycle] <= 600_000, (prop["name"], cycle)
            if "desired" in prop:
                assert declared["accessMode"] == "ReadWrite", f"{prop['name']} is ReadOnly"
            mqtt = prop.get("pushMethod", {}).get("mqtt")
            if mqtt:
                topic = f"jetson/{device['metadata']['namespace']}/{device['metadata']['name']}/{prop['name']}"
                assert (mqtt["address"], mqtt["topic"], mqtt["qos"]) == ("tcp://127.0.0.1:1883", topic, 1)
        for method in spec.get("methods", []):
            assert set(method["propertyNames"]) <= set(names), method["name"]
            assert all(model_properties[n]["accessMode"] == "ReadWrite" for n in method["propertyNames"])


def test_xavier_demo_desires_every_writable_property_it_can_hold() -> None:
    ((_, xavier),) = [(p, d) for p, d in devices() if d["metadata"]["name"] == "jetson-xavier"]
    desired = {p["name"]: p["desired"]["value"] for p in xavier["spec"]["properties"] if "desired" in p}
    assert desired == {"nvpmodel": "MODE_20W_6CORE", "jetson_clocks": "false", "fan_profile": "quiet"}
    readings = {p["visitors"]["configData"]["reading"] for p in xavier["spec"]["properties"]}
    assert "temperature.tdiode" in readings, "the demo shows a custom reading"
    assert xavier["status"] == {"reportToCloud": True, "reportCycle": 10000}


def test_desired_values_are_valid_twin_values() -> None:
    twin_value = re.compile(r"^[a-zA-Z0-9-_.,:/@#]{1,512}$")
    for _, device in devices():
        for prop in device["spec"]["properties"]:
            if "desired" in prop:
                assert twin_value.match(prop["desired"]["value"]), prop
                assert prop["name"] in WRITABLE_DESIRED
