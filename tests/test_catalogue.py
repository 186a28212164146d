"""bind_property: catalogue names, the `reading` visitor, declared types and writability."""

from __future__ import annotations

import pytest

from mapper.devices import model
from mapper.devices.catalogue import CATALOGUE, PropertyBinding, bind_property, entry

RW = model.ModelProperty


def device_prop(name: str, protocol: str = "jetson", **config: model.ConfigValue) -> model.DeviceProperty:
    """A Device property with the given visitor config."""
    return model.DeviceProperty(name=name, visitor_protocol=protocol, visitor_config=config)


def test_catalogue_names_are_unique_and_entry_finds_them() -> None:
    names = [e.name for e in CATALOGUE]
    assert len(names) == len(set(names)) == 23
    assert entry("fan_speed") is not None and entry("fan_speed").maximum == "100"  # type: ignore[union-attr]
    assert entry("no_such_thing") is None
    writable = {e.name for e in CATALOGUE if e.writable}
    assert writable == {"fan_speed", "fan_profile", "nvpmodel", "jetson_clocks"}


def test_catalogue_property_binds_to_its_reading() -> None:
    binding = bind_property(device_prop("cpu_temperature"), RW("cpu_temperature", "FLOAT", unit="°C"))
    assert binding == PropertyBinding("cpu_temperature", "temperature.cpu", "FLOAT", "°C", False)


def test_catalogue_property_without_model_uses_catalogue_type_and_is_read_only() -> None:
    binding = bind_property(device_prop("fan_speed", protocol=""), None)
    assert binding == PropertyBinding("fan_speed", "fan.speed", "FLOAT", "%", False)


@pytest.mark.parametrize(("name", "access", "writable"), [
    ("fan_speed", model.READ_WRITE, True),
    ("fan_speed", model.READ_ONLY, False),
    ("jetson_clocks", model.READ_WRITE, True),
    ("gpu_usage", model.READ_WRITE, False),  # the catalogue cannot write a GPU load
])
def test_writable_needs_model_and_catalogue(name: str, access: str, writable: bool) -> None:
    binding = bind_property(device_prop(name), RW(name, entry(name).type, access))  # type: ignore[union-attr]
    assert binding.writable is writable


def test_same_reading_as_catalogue_keeps_catalogue_behaviour() -> None:
    binding = bind_property(device_prop("fan_speed", reading="fan.speed"),
                            RW("fan_speed", "FLOAT", model.READ_WRITE))
    assert binding.writable and binding.reading == "fan.speed"


def test_reading_visitor_wins_and_is_never_writable() -> None:
    binding = bind_property(device_prop("fan_speed", reading="fan.pwmfan.1.speed"),
                            RW("fan_speed", "FLOAT", model.READ_WRITE))
    assert binding.reading == "fan.pwmfan.1.speed" and binding.writable is False


def test_custom_reading_under_any_name() -> None:
    binding = bind_property(device_prop("soc_temperature", reading="temperature.soc0"),
                            RW("soc_temperature", "DOUBLE", unit="celsius"))
    assert binding == PropertyBinding("soc_temperature", "temperature.soc0", "DOUBLE", "celsius", False)


def test_custom_reading_without_model_gets_documented_type_and_unit() -> None:
    assert bind_property(device_prop("t", reading="temperature.soc0"), None).type == "FLOAT"
    assert bind_property(device_prop("t", reading="temperature.soc0"), None).unit == "°C"
    assert bind_property(device_prop("c", reading="cpu.cores.online"), None).type == "INT"
    assert bind_property(device_prop("j", reading="jetson_clocks"), None).type == "BOOLEAN"
    assert bind_property(device_prop("x", reading="not.documented"), None).type == "STRING"


def test_declared_type_wins_over_catalogue() -> None:
    assert bind_property(device_prop("uptime"), RW("uptime", "float")).type == "FLOAT"


def test_unknown_property_is_rejected_with_fix_instructions() -> None:
    with pytest.raises(model.DeviceRejected) as error:
        bind_property(device_prop("gpu_load"), RW("gpu_load", "FLOAT"))
    message = str(error.value)
    assert "'gpu_load'" in message and "gpu_usage" in message and "jetson_clocks" in message
    assert "configData.reading" in message


@pytest.mark.parametrize("reading", ["", "Temperature.cpu", "temperature..cpu", "temperature.cpu.", "a b",
                                     "temperature.c+u", ".cpu"])
def test_malformed_reading_visitor_is_rejected(reading: str) -> None:
    with pytest.raises(model.DeviceRejected, match="not a reading key"):
        bind_property(device_prop("x", reading=reading), RW("x", "FLOAT"))


def test_non_string_reading_visitor_is_rejected() -> None:
    with pytest.raises(model.DeviceRejected, match="not a reading key"):
        bind_property(device_prop("x", reading=3.0), RW("x", "FLOAT"))


def test_reading_visitor_accepts_board_names() -> None:
    for reading in ("power.rail.VDD_CPU_GPU_CV.power", "engine.NVJPG.NVJPG1.freq", "fan.pwm-fan.0.rpm"):
        assert bind_property(device_prop("x", reading=reading), RW("x", "FLOAT")).reading == reading


def test_foreign_visitor_protocol_is_rejected() -> None:
    with pytest.raises(model.DeviceRejected, match="modbus"):
        bind_property(device_prop("gpu_usage", protocol="modbus"), RW("gpu_usage", "FLOAT"))


@pytest.mark.parametrize(("declared", "match"), [("BYTES", "cannot be read"), ("STREAM", "cannot be read"),
                                                 ("COLOUR", "unknown type")])
def test_unusable_declared_types_are_rejected(declared: str, match: str) -> None:
    with pytest.raises(model.DeviceRejected, match=match):
        bind_property(device_prop("gpu_usage"), RW("gpu_usage", declared))
