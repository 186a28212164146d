"""The documented set of flat reading keys (patterns with <placeholders>), their types and units."""

from __future__ import annotations

import re
from typing import NamedTuple

# What a <placeholder> segment may hold: names given by the board, made key-safe by the normaliser.
PLACEHOLDER_SEGMENT = r"[A-Za-z0-9_\-]+"


class ReadingKey(NamedTuple):
    """One documented reading key: pattern, Python value type name, unit and meaning."""

    pattern: str
    kind: str  # "float", "int", "str" or "bool"
    unit: str
    description: str


def _keys(kind: str, unit: str, description: str, *patterns: str) -> tuple[ReadingKey, ...]:
    """Several keys sharing type, unit and description."""
    return tuple(ReadingKey(p, kind, unit, description) for p in patterns)


READING_KEYS: tuple[ReadingKey, ...] = (
    ReadingKey("uptime", "float", "s", "time since the board booted"),
    ReadingKey("cpu.usage", "float", "%", "mean busy share (100 - idle) over online cores"),
    ReadingKey("cpu.cores.online", "int", "", "number of online CPU cores"),
    ReadingKey("cpu.cores.total", "int", "", "number of CPU cores, online or not"),
    ReadingKey("cpu.freq", "int", "Hz", "mean current frequency of online cores"),
    ReadingKey("cpu.core.<i>.usage", "float", "%", "busy share of core i (0-based), online cores only"),
    ReadingKey("cpu.core.<i>.freq", "int", "Hz", "current frequency of core i, online cores only"),
    ReadingKey("cpu.core.<i>.online", "bool", "", "whether core i is online"),
    ReadingKey("gpu.name", "str", "", "devfreq name of the first GPU (gpu, ga10b, ...)"),
    ReadingKey("gpu.usage", "float", "%", "GPU load"),
    ReadingKey("gpu.freq", "int", "Hz", "current GPU frequency"),
    ReadingKey("gpu.freq.min", "int", "Hz", "lowest GPU frequency the governor may pick"),
    ReadingKey("gpu.freq.max", "int", "Hz", "highest GPU frequency the governor may pick"),
    ReadingKey("ram.total", "int", "bytes", "total RAM (MemTotal)"),
    ReadingKey("ram.used", "int", "bytes", "RAM in use, without buffers and cache (jtop's figure)"),
    ReadingKey("ram.free", "int", "bytes", "free RAM (MemFree)"),
    ReadingKey("ram.buffers", "int", "bytes", "RAM used for block-device buffers"),
    ReadingKey("ram.cached", "int", "bytes", "page cache plus reclaimable slab"),
    ReadingKey("ram.shared", "int", "bytes", "RAM shared between CPU and GPU (NvMap)"),
    ReadingKey("ram.usage", "float", "%", "ram.used / ram.total"),
    ReadingKey("swap.total", "int", "bytes", "total swap (zram and files)"),
    ReadingKey("swap.used", "int", "bytes", "swap in use"),
    ReadingKey("swap.cached", "int", "bytes", "swap also held in RAM"),
    ReadingKey("emc.usage", "float", "%", "external memory controller bandwidth use"),
    ReadingKey("emc.freq", "int", "Hz", "current memory controller frequency"),
    ReadingKey("emc.freq.max", "int", "Hz", "highest memory controller frequency (power mode cap)"),
    ReadingKey("temperature.<sensor>", "float", "°C", "thermal zone, lower-cased; offline zones absent"),
    ReadingKey("power.rail.<RAIL>.power", "float", "W", "instant power of a rail (jtop's rail name)"),
    ReadingKey("power.rail.<RAIL>.avg", "float", "W", "average power of a rail"),
    ReadingKey("power.rail.<RAIL>.voltage", "float", "V", "rail voltage"),
    ReadingKey("power.rail.<RAIL>.current", "float", "A", "rail current"),
    ReadingKey("power.total", "float", "W", "board input power (input rail, or sum of rails)"),
    ReadingKey("power.total.avg", "float", "W", "average board input power"),
    ReadingKey("power.total.source", "str", "", "input rail name (VDD_IN, POM_5V_IN) or 'sum'"),
    ReadingKey("fan.name", "str", "", "name of the first fan (usually pwmfan)"),
    ReadingKey("fan.speed", "float", "%", "first fan, channel 0: PWM duty"),
    ReadingKey("fan.rpm", "int", "rpm", "first fan, channel 0: tachometer"),
    ReadingKey("fan.profile", "str", "", "first fan: profile (quiet, cool, manual, ...)"),
    ReadingKey("fan.governor", "str", "", "first fan: governor; absent in the manual profile"),
    ReadingKey("fan.control", "str", "", "first fan: control loop; absent in the manual profile"),
    ReadingKey("fan.<name>.<i>.speed", "float", "%", "PWM duty of channel i of a fan"),
    ReadingKey("fan.<name>.<i>.rpm", "int", "rpm", "tachometer of channel i of a fan"),
    ReadingKey("nvpmodel.name", "str", "", "active power mode name"),
    ReadingKey("nvpmodel.id", "int", "", "active power mode id"),
    ReadingKey("nvpmodel.default", "str", "", "default power mode name"),
    ReadingKey("jetson_clocks", "bool", "", "whether jetson_clocks is enabled"),
    ReadingKey("jetson_clocks.status", "str", "", "jetson_clocks service state (running, inactive, ...)"),
    ReadingKey("engine.<GROUP>.<NAME>.online", "bool", "", "whether a hardware engine is running"),
    ReadingKey("engine.<GROUP>.<NAME>.freq", "int", "Hz", "current frequency of a hardware engine"),
    ReadingKey("processes.count", "int", "", "number of processes using the GPU"),
    ReadingKey("processes.cpu", "float", "%", "summed CPU share of those processes"),
    ReadingKey("processes.ram", "int", "bytes", "summed resident memory of those processes"),
    ReadingKey("processes.gpu_memory", "int", "bytes", "summed GPU memory of those processes"),
    ReadingKey("pods.gpu_memory_holders", "str", "",
               "pods holding GPU memory, most first: <ns>/<pod>,... (pods.enabled only; docs/pods.md)"),
    *_keys("str", "", "board identity strings from jtop's board.hardware (empty ones absent)",
           "board.model", "board.module", "board.soc", "board.jetpack", "board.l4t",
           "board.part_number", "board.p_number", "board.cuda_arch", "board.serial", "board.codename"),
)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Regex for a documented pattern: each <placeholder> matches one key-safe segment."""
    parts = [PLACEHOLDER_SEGMENT if p.startswith("<") else re.escape(p) for p in pattern.split(".")]
    return re.compile(r"\.".join(parts) + r"\Z")


_COMPILED = tuple((_pattern_regex(k.pattern), k) for k in READING_KEYS)


def documented_key(key: str) -> ReadingKey | None:
    """The documented pattern a concrete reading key belongs to (exact names before placeholders)."""
    exact = next((k for k in READING_KEYS if k.pattern == key), None)
    return exact or next((k for regex, k in _COMPILED if regex.match(key)), None)
