"""docs/architecture.md: the worked sink example runs as written, and the registration lines it shows are real."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mapper.config import MapperConfig
from mapper.control.controller import Controller
from mapper.devices.registry import DeviceRegistry
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.dmi.manifests import load_manifests
from mapper.runtime import Runtime
from mapper.sinks import registry as sink_registry
from mapper.sinks.registry import SinkContext, SinkKind, SinkSet

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
SNAPSHOT = REPO / "tests" / "fixtures" / "jtop" / "agx-orin_jp5_built.json"
SAMPLE_TIME = 1_767_225_600.5


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def _block_with(text: str) -> str:
    found = [block for block in _python_blocks() if text in block]
    assert len(found) == 1, f"docs/architecture.md should have one python block with {text!r}"
    return found[0]


def test_the_mqtt_registration_line_is_the_real_one() -> None:
    line = _block_with('SinkKind("mqtt"').strip()
    assert line in Path(sink_registry.__file__).read_text(encoding="utf-8")


@pytest.fixture
def example_module(tmp_path: Path) -> Any:
    """The example sink of the page, importable as a module like a file under mapper/sinks/."""
    (tmp_path / "jsonl_example.py").write_text(_block_with("class JsonLinesSink"), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        import jsonl_example

        yield jsonl_example
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("jsonl_example", None)


def test_the_worked_example_delivers_every_reported_property(example_module: Any, tmp_path: Path) -> None:
    registration = _block_with('SinkKind("jsonl"').strip().rstrip(",").replace("mapper.sinks.jsonl", "jsonl_example")
    kind = eval(registration, {"SinkKind": SinkKind})  # the line as the page writes it
    config = MapperConfig(socket_path=str(tmp_path / "jetson.sock"))
    sinks = SinkSet(SinkContext(config, "node-a"), kinds=(kind,))
    registry = DeviceRegistry("jetson", check_outputs=sinks.check)
    runtime = Runtime(registry, Controller(None, config.control), 1.0, sinks=sinks)
    models, devices = load_manifests([REPO / "device-model" / "jetson-model.yaml",
                                      REPO / "device-model" / "jetson-xavier.yaml"])
    runtime.upsert_model(model_from_pb(models[0]))
    device = device_from_pb(devices[0])
    runtime.upsert_device(replace(device, properties=tuple(replace(p, desired=None) for p in device.properties)))
    runtime.on_availability(True, "test")
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    runtime.on_sample({**snapshot, "time": SAMPLE_TIME})
    runtime.tick()
    runtime.tick()  # nothing is due again within the reportCycle

    lines = [json.loads(line) for line in (tmp_path / "jetson.jsonl").read_text(encoding="utf-8").splitlines()]
    running = registry.device("default", "jetson-xavier")
    assert running is not None
    expected = {p.name: runtime.value(p) for p in running.properties
                if p.report_to_cloud and runtime.value(p) is not None}
    assert len(expected) >= 10
    assert {line["property"]: line["value"] for line in lines} == expected
    assert len(lines) == len(expected)
    assert {line["device"] for line in lines} == {"jetson-xavier"}
    assert {line["timestamp"] for line in lines} == {SAMPLE_TIME}
