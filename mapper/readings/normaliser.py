"""The one place that turns a jtop sample into board-independent flat readings in base units."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from mapper.readings.compute import (
    cpu_readings,
    engine_readings,
    gpu_readings,
    memory_readings,
    process_readings,
)
from mapper.readings.keys import READING_KEYS, ReadingKey, documented_key
from mapper.readings.sensors import fan_readings, power_readings, temperature_readings
from mapper.readings.util import Out, Reading, flag, integer, mapping, number, put, text

__all__ = ["READING_KEYS", "Reading", "ReadingKey", "Readings", "documented_key", "normalise"]

Readings = Mapping[str, Reading]

_log = logging.getLogger(__name__)

# timedelta's str(): "0:15:31.410000", "3 days, 4:05:06.5"
_UPTIME_TEXT = re.compile(r"(?:(\d+) days?, )?(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")

# jetson.board['hardware'] keys (any case: 4.x/7.x 'Module', 'SoC'; older 'MODULE', 'SOC').
_BOARD_KEYS = {
    "model": "board.model",
    "module": "board.module",
    "soc": "board.soc",
    "jetpack": "board.jetpack",
    "l4t": "board.l4t",
    "699-level part number": "board.part_number",
    "p-number": "board.p_number",
    "cuda arch bin": "board.cuda_arch",
    "serial number": "board.serial",
    "codename": "board.codename",
}


def uptime_seconds(value: Any) -> float | None:
    """Uptime in seconds from a number or a timedelta string ("H:MM:SS.ffffff", "N days, ...")."""
    seconds = number(value)
    if seconds is None and isinstance(value, str):
        match = _UPTIME_TEXT.fullmatch(value.strip())
        if match:
            days, hours, minutes, secs = match.groups()
            seconds = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs)
    return seconds if seconds is not None and seconds >= 0 else None


def board_readings(board: Any, out: Out) -> None:
    """board.* identity strings from jtop's board dict (its `hardware` part, or a flat dict)."""
    board_map = mapping(board)
    if board_map is None:
        return
    hardware = mapping(board_map.get("hardware")) or board_map
    for name, value in hardware.items():
        reading_key, value_text = _BOARD_KEYS.get(str(name).strip().lower()), text(value)
        if reading_key is not None and value_text is not None:
            out.setdefault(reading_key, value_text)


def nvpmodel_readings(nvpmodel: Any, out: Out) -> None:
    """nvpmodel.name/id/default from a mode-name string or jtop's {name, id, default, ...} dict."""
    if isinstance(nvpmodel, str):
        put(out, "nvpmodel.name", text(nvpmodel))
        return
    model = mapping(nvpmodel)
    if model is None:
        return
    put(out, "nvpmodel.name", text(model.get("name")))
    put(out, "nvpmodel.id", integer(model.get("id")))
    default = model.get("default")
    put(out, "nvpmodel.default", text((mapping(default) or {}).get("name")) or text(default))


def jetson_clocks_readings(jetson_clocks: Any, out: Out) -> None:
    """jetson_clocks (enabled) and jetson_clocks.status from a bool or jtop's {enable, status} dict."""
    if isinstance(jetson_clocks, bool):
        out["jetson_clocks"] = jetson_clocks
        return
    clocks = mapping(jetson_clocks)
    if clocks is not None:
        put(out, "jetson_clocks", flag(clocks.get("enable")))
        put(out, "jetson_clocks.status", text(clocks.get("status")))


_SECTIONS: tuple[tuple[str, Callable[[Any, Out], None]], ...] = (
    ("board", board_readings),
    ("cpu", cpu_readings),
    ("gpu", gpu_readings),
    ("memory", memory_readings),
    ("engine", engine_readings),
    ("processes", process_readings),
    ("temperature", temperature_readings),
    ("power", power_readings),
    ("fan", fan_readings),
    ("nvpmodel", nvpmodel_readings),
    ("jetson_clocks", jetson_clocks_readings),
)


def normalise(snapshot: Mapping[str, Any]) -> Readings:
    """Flat, read-only readings from one jtop sample; missing or malformed sections are left out."""
    out: Out = {}
    if not isinstance(snapshot, Mapping):
        return MappingProxyType(out)
    put(out, "uptime", uptime_seconds(snapshot.get("uptime")))
    for name, section in _SECTIONS:
        partial: Out = {}
        try:
            section(snapshot.get(name), partial)
        except Exception:  # a malformed section must never stop the others
            _log.debug("jtop section %r could not be normalised", name, exc_info=True)
            continue
        out.update(partial)
    return MappingProxyType(out)
