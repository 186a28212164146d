"""Declarative catalogue of Jetson Device properties and how a Device property binds to a reading."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mapper.devices import model
from mapper.readings.keys import documented_key

PROTOCOL_NAME = "jetson"
READING_VISITOR_KEY = "reading"
READING_KEY_SYNTAX = re.compile(r"[a-z0-9_]+(\.[A-Za-z0-9_\-]+)*")
# Types the mapper can read and report; BYTES and STREAM exist in KubeEdge but not on a Jetson twin.
SUPPORTED_TYPES = ("INT", "FLOAT", "DOUBLE", "STRING", "BOOLEAN")


@dataclass(frozen=True)
class CatalogueEntry:
    """A built-in property: its twin type and unit, the reading it shows, and whether it can be set."""

    name: str
    type: str
    unit: str
    reading: str
    description: str
    writable: bool = False
    minimum: str = ""
    maximum: str = ""


def _entry(name: str, type_: str, unit: str, reading: str, description: str) -> CatalogueEntry:
    """A read-only entry."""
    return CatalogueEntry(name, type_, unit, reading, description)


CATALOGUE: tuple[CatalogueEntry, ...] = (
    _entry("gpu_usage", "FLOAT", "%", "gpu.usage", "GPU load"),
    _entry("gpu_frequency", "INT", "Hz", "gpu.freq", "current GPU frequency"),
    _entry("gpu_temperature", "FLOAT", "°C", "temperature.gpu", "GPU thermal zone"),
    _entry("cpu_usage", "FLOAT", "%", "cpu.usage", "mean CPU load over online cores"),
    _entry("cpu_frequency", "INT", "Hz", "cpu.freq", "mean current frequency of online cores"),
    _entry("cpu_temperature", "FLOAT", "°C", "temperature.cpu", "CPU thermal zone"),
    _entry("ram_used", "INT", "bytes", "ram.used", "RAM in use"),
    _entry("ram_total", "INT", "bytes", "ram.total", "installed RAM"),
    _entry("ram_usage", "FLOAT", "%", "ram.usage", "share of RAM in use"),
    _entry("swap_used", "INT", "bytes", "swap.used", "swap in use"),
    _entry("emc_usage", "FLOAT", "%", "emc.usage", "memory controller bandwidth use"),
    _entry("tj_temperature", "FLOAT", "°C", "temperature.tj",
           "junction temperature (hottest zone); absent on older boards"),
    _entry("power_total", "FLOAT", "W", "power.total", "board input power"),
    _entry("fan_rpm", "INT", "rpm", "fan.rpm", "first fan tachometer"),
    CatalogueEntry("fan_speed", "FLOAT", "%", "fan.speed",
                   "first fan PWM duty", True, "0", "100"),
    CatalogueEntry("fan_profile", "STRING", "", "fan.profile",
                   "fan profile (quiet, cool, manual, ...)", True),
    CatalogueEntry("nvpmodel", "STRING", "", "nvpmodel.name", "power mode name; set by name or id", True),
    _entry("nvpmodel_id", "INT", "", "nvpmodel.id", "power mode id"),
    CatalogueEntry("jetson_clocks", "BOOLEAN", "", "jetson_clocks", "clocks pinned at maximum", True),
    _entry("uptime", "INT", "s", "uptime", "time since boot"),
    _entry("board_model", "STRING", "", "board.model", "board model name"),
    _entry("jetpack", "STRING", "", "board.jetpack", "JetPack release"),
    _entry("gpu_pods", "STRING", "", "pods.gpu_memory_holders",
           "pods holding GPU memory, most first (<ns>/<pod>,...); needs pods.enabled"),
)

_BY_NAME = {e.name: e for e in CATALOGUE}
_KIND_TYPES = {"float": "FLOAT", "int": "INT", "bool": "BOOLEAN", "str": "STRING"}


def entry(name: str) -> CatalogueEntry | None:
    """The catalogue entry called `name`, if any."""
    return _BY_NAME.get(name)


@dataclass(frozen=True)
class PropertyBinding:
    """How one Device property is read (and whether it may be written)."""

    name: str
    reading: str
    type: str
    unit: str
    writable: bool


def _how_to_fix(name: str) -> str:
    """The part of a rejection message that says how to make the property valid."""
    return (f"property {name!r} is not a built-in Jetson property and has no "
            f"'{READING_VISITOR_KEY}' visitor. Use one of: {', '.join(sorted(_BY_NAME))}; or give any "
            f"reading under any name with visitors.configData.{READING_VISITOR_KEY}: <reading key> "
            "(e.g. temperature.soc0; see docs/properties.md)")


def _custom_reading(prop: model.DeviceProperty) -> str | None:
    """The validated `reading` visitor value, None when absent; DeviceRejected when malformed."""
    if READING_VISITOR_KEY not in prop.visitor_config:
        return None
    reading = prop.visitor_config[READING_VISITOR_KEY]
    if not isinstance(reading, str) or not READING_KEY_SYNTAX.fullmatch(reading):
        raise model.DeviceRejected(
            f"property {prop.name!r}: visitor {READING_VISITOR_KEY}={reading!r} is not a reading key "
            "(lower-case first segment, dot-separated, e.g. temperature.soc0)")
    return reading


def _documented_type_and_unit(reading: str) -> tuple[str, str]:
    """Twin type and unit a custom reading gets without a DeviceModel (STRING for unknown keys)."""
    documented = documented_key(reading)
    if documented is None:
        return "STRING", ""
    return _KIND_TYPES[documented.kind], documented.unit


def _declared_type(prop_name: str, model_prop: model.ModelProperty | None, fallback: str) -> str:
    """The DeviceModel's type when declared, else `fallback`; unsupported types are rejected."""
    if model_prop is None:
        return fallback
    declared = model_prop.type.strip().upper()
    if declared not in model.PROPERTY_TYPES:
        raise model.DeviceRejected(f"property {prop_name!r}: unknown type {model_prop.type!r}; "
                                   f"use one of {', '.join(model.PROPERTY_TYPES)}")
    if declared not in SUPPORTED_TYPES:
        raise model.DeviceRejected(f"property {prop_name!r}: type {declared} cannot be read from a Jetson; "
                                   f"use one of {', '.join(SUPPORTED_TYPES)}")
    return declared


def bind_property(prop: model.DeviceProperty, model_prop: model.ModelProperty | None) -> PropertyBinding:
    """Bind a Device property to a reading; raises model.DeviceRejected with a fix-it message.

    A `reading` visitor wins and may name any reading key (existence depends on the board, so only
    the syntax is checked) and is never writable. Otherwise the property name must be a catalogue
    name. A declared DeviceModel type overrides the catalogue type; writable needs both a ReadWrite
    model property and a writable catalogue entry.
    """
    if prop.visitor_protocol not in ("", PROTOCOL_NAME):
        raise model.DeviceRejected(f"property {prop.name!r}: visitor protocolName {prop.visitor_protocol!r} "
                                   f"is not {PROTOCOL_NAME!r}")
    builtin = entry(prop.name)
    custom_reading = _custom_reading(prop)
    if custom_reading is None:
        if builtin is None:
            raise model.DeviceRejected(_how_to_fix(prop.name))
        custom_reading = builtin.reading
    if builtin is not None and custom_reading == builtin.reading:
        fallback_type, fallback_unit, can_write = builtin.type, builtin.unit, builtin.writable
    else:
        fallback_type, fallback_unit, can_write = *_documented_type_and_unit(custom_reading), False
    declared_unit = model_prop.unit if model_prop is not None else ""
    return PropertyBinding(
        name=prop.name,
        reading=custom_reading,
        type=_declared_type(prop.name, model_prop, fallback_type),
        unit=declared_unit or fallback_unit,
        writable=can_write and model_prop is not None and model_prop.writable,
    )
