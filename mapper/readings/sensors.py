"""Normalisers for the sensor sections of a jtop sample: temperatures, power rails, fans."""

from __future__ import annotations

from typing import Any

from mapper.readings.util import (
    Out,
    divided,
    integer,
    key_part,
    mapping,
    number,
    put,
    sequence,
    text,
)

OFFLINE_TEMPERATURE = -256.0  # what jtop reports for a thermal zone that cannot be read
MILLI = 1000.0  # jtop power is mW / mV / mA; readings are W / V / A


def temperature_readings(temperature: Any, out: Out) -> None:
    """temperature.<sensor> in °C; sensor names lower-cased, offline and -256 zones left out.

    JetPack 5 names zones upper-case (CPU, GPU, SOC0), JetPack 6 lower-case: lower-casing makes one
    key per sensor on both. When two zones collapse to the same key the first one wins.
    """
    for name, sensor in (mapping(temperature) or {}).items():
        sensor_key, sensor_map = key_part(name), mapping(sensor)
        if sensor_key is None or sensor_map is None or sensor_map.get("online") is False:
            continue
        value = number(sensor_map.get("temp"))
        if value is None or value <= OFFLINE_TEMPERATURE:
            continue
        out.setdefault(f"temperature.{sensor_key.lower()}", value)


def _rail_readings(prefix: str, rail: Any, out: Out) -> bool:
    """Write power/avg/voltage/current of one rail under `prefix`; False when the rail is unusable."""
    rail_map = mapping(rail)
    if rail_map is None or rail_map.get("online") is False:
        return False
    power = divided(rail_map.get("power"), MILLI)
    if power is None:
        return False
    out[f"{prefix}.power"] = power
    put(out, f"{prefix}.avg", divided(rail_map.get("avg"), MILLI))
    put(out, f"{prefix}.voltage", divided(rail_map.get("volt"), MILLI))
    put(out, f"{prefix}.current", divided(rail_map.get("curr"), MILLI))
    return True


def power_readings(power: Any, out: Out) -> None:
    """power.rail.<RAIL>.*, power.total[.avg] and power.total.source, from jtop's `power` only.

    `power['tot']` is the board's input rail when it has one (its `name` becomes the source); jtop
    itself sums the rails on boards without one (no `name`: source "sum"). If `tot` is missing
    entirely we sum the online rails ourselves, also with source "sum".
    """
    power_map = mapping(power)
    if power_map is None:
        return
    rail_powers: list[float] = []
    rail_averages: list[float] = []
    for name, rail in (mapping(power_map.get("rail")) or {}).items():
        rail_key = key_part(name)
        if rail_key is None:
            continue
        prefix = f"power.rail.{rail_key}"
        if _rail_readings(prefix, rail, out):
            rail_powers.append(float(out[f"{prefix}.power"]))
            average = out.get(f"{prefix}.avg")
            if isinstance(average, float):
                rail_averages.append(average)
    total = mapping(power_map.get("tot"))
    total_power = divided(total.get("power"), MILLI) if total is not None else None
    if total is not None and total_power is not None and total.get("online") is not False:
        out["power.total"] = total_power
        put(out, "power.total.avg", divided(total.get("avg"), MILLI))
        out["power.total.source"] = key_part(total.get("name")) or "sum"
    elif rail_powers:
        out["power.total"] = sum(rail_powers)
        if len(rail_averages) == len(rail_powers):
            out["power.total.avg"] = sum(rail_averages)
        out["power.total.source"] = "sum"


def fan_readings(fan: Any, out: Out) -> None:
    """fan.* for the first fan (channel 0) plus fan.<name>.<i>.speed/rpm for every fan channel.

    `governor` and `control` exist only while an automatic profile runs: in `manual` they vanish,
    and so do their keys.
    """
    fans = mapping(fan)
    if not fans:
        return
    first = True
    for name, data in fans.items():
        fan_key, data_map = key_part(name), mapping(data)
        if fan_key is None or data_map is None:
            continue
        speeds = [number(v) for v in sequence(data_map.get("speed")) or ()]
        rpms = [integer(v) for v in sequence(data_map.get("rpm")) or ()]
        for index, speed in enumerate(speeds):
            put(out, f"fan.{fan_key}.{index}.speed", speed)
        for index, rpm in enumerate(rpms):
            put(out, f"fan.{fan_key}.{index}.rpm", rpm)
        if not first:
            continue
        first = False
        out["fan.name"] = fan_key
        put(out, "fan.speed", speeds[0] if speeds else None)
        put(out, "fan.rpm", rpms[0] if rpms else None)
        for field in ("profile", "governor", "control"):
            put(out, f"fan.{field}", text(data_map.get(field)))

