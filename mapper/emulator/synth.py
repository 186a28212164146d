"""Deterministic variation of a raw jtop sample: smooth load waves and what follows from them."""

from __future__ import annotations

import math
from typing import Any

Sample = dict[str, Any]

DEFAULT_PERIOD_S = 90.0
FAN_PWM_CAP = 255


def wave(t: float, period: float, phase: float) -> float:
    """A smooth value in [0, 1] with the given period (s) and phase (fraction of a period)."""
    return 0.5 - 0.5 * math.cos(2.0 * math.pi * (t / period + phase))


def pwm_to_percent(pwm: int) -> float:
    """Fan speed as jtop reads it back from a PWM register (set 30 -> 29.8...)."""
    return float(pwm * 100 / FAN_PWM_CAP)


def percent_to_pwm(percent: float) -> int:
    """The PWM register value jtop writes for a speed in percent."""
    return int(max(0.0, min(100.0, float(percent))) * FAN_PWM_CAP / 100)


def _pair(values: Any) -> tuple[float, float]:
    """A (low, high) knob as floats."""
    low, high = values
    return float(low), float(high)


class Variation:
    """The generator knobs of a profile (`variation` object), with defaults."""

    def __init__(self, knobs: dict[str, Any]) -> None:
        self.period = float(knobs.get("period_s", DEFAULT_PERIOD_S))
        self.cpu_load = _pair(knobs.get("cpu_load", (5.0, 60.0)))
        self.gpu_load = _pair(knobs.get("gpu_load", (0.0, 70.0)))
        self.temp_rise = float(knobs.get("temp_rise_c", 12.0))
        self.ram_swing_kb = int(knobs.get("ram_swing_kb", 200_000))
        self.fan_rpm_max = int(knobs.get("fan_rpm_max", 5000))
        self.fan_curve = _pair(knobs.get("fan_curve_c", (35.0, 70.0)))

    def cpu_core_load(self, t: float, core: int) -> float:
        """Load (%) of one CPU core at emulated time t."""
        low, high = self.cpu_load
        shape = 0.65 * wave(t, self.period, 0.11 * core) + 0.35 * wave(t, self.period / 3.7, 0.29 * core)
        return low + (high - low) * shape

    def gpu_load_at(self, t: float) -> float:
        """GPU load (%) at emulated time t."""
        low, high = self.gpu_load
        return low + (high - low) * wave(t, self.period * 1.3, 0.4)

    def heat(self, t: float) -> float:
        """Thermal load in [0, 1]: the mean load some seconds earlier (sensors lag the load)."""
        lagged = t - self.period / 9.0
        cpu = self.cpu_core_load(lagged, 0) / 100.0
        gpu = self.gpu_load_at(lagged) / 100.0
        return max(0.0, min(1.0, 0.5 * cpu + 0.5 * gpu))

    def auto_fan_pwm(self, temp_max: float) -> int:
        """PWM a temperature-driven fan controller picks for the hottest sensor."""
        cold, hot = self.fan_curve
        fraction = max(0.0, min(1.0, (temp_max - cold) / (hot - cold)))
        return int(fraction * FAN_PWM_CAP)


def vary_cpu(sample: Sample, knobs: Variation, t: float) -> None:
    """Per-core load and frequency follow the load waves."""
    for index, core in enumerate(sample["cpu"]["cpu"]):
        if not core.get("online"):
            continue
        load = knobs.cpu_core_load(t, index)
        core["user"] = round(load * 0.7, 3)
        core["nice"] = 0.0
        core["system"] = round(load * 0.3, 3)
        core["idle"] = round(100.0 - core["user"] - core["system"], 3)
        freq = core.get("freq")
        if freq:
            step = max(1, (freq["max"] - freq["min"]) // 8)
            freq["cur"] = min(freq["max"], freq["min"] + step * round(load / 100.0 * 8))
            core.setdefault("info_freq", dict(freq))["cur"] = freq["cur"]


def vary_gpu(sample: Sample, knobs: Variation, t: float) -> None:
    """GPU load and frequency follow the GPU wave."""
    load = knobs.gpu_load_at(t)
    for gpu in sample["gpu"].values():
        gpu["status"]["load"] = round(load, 1)
        freq = gpu["freq"]
        step = max(1, (freq["max"] - freq["min"]) // 6)
        freq["cur"] = min(freq["max"], freq["min"] + step * round(load / 100.0 * 6))
        if "GPC" in freq:
            freq["GPC"] = [freq["cur"] for _ in freq["GPC"]]


def vary_memory(sample: Sample, base: Sample, knobs: Variation, t: float) -> None:
    """RAM use breathes slowly; EMC load follows CPU and GPU."""
    ram = sample["mem"]["RAM"]
    base_ram = base["mem"]["RAM"]
    used = int(base_ram["used"] + knobs.ram_swing_kb * wave(t, knobs.period * 2.1, 0.2))
    ram["used"] = min(used, ram["tot"] - ram["buffers"] - ram["cached"])
    ram["free"] = max(0, ram["tot"] - ram["used"] - ram["buffers"] - ram["cached"])
    emc = sample["mem"].get("EMC")
    if emc and "val" in emc:
        mix = 0.5 * knobs.cpu_core_load(t, 0) + 0.5 * knobs.gpu_load_at(t)
        emc["val"] = round(mix * 0.6, 1)


def vary_temperature(sample: Sample, base: Sample, knobs: Variation, t: float, cooling: float) -> float:
    """Online sensors warm with the lagged load and cool with the fan; returns the hottest one."""
    heat = knobs.heat(t)
    hottest = -256.0
    sensors = sample["temperature"]
    for name, sensor in sensors.items():
        if not sensor.get("online", True) or name == "tj":
            continue
        base_temp = float(base["temperature"][name]["temp"])
        sensor["temp"] = round(base_temp + knobs.temp_rise * heat - 4.0 * cooling, 3)
        hottest = max(hottest, sensor["temp"])
    if "tj" in sensors and sensors["tj"].get("online", True) and hottest > -256.0:
        sensors["tj"]["temp"] = hottest
    return hottest


def vary_power(sample: Sample, base: Sample, knobs: Variation, t: float, scale: float) -> None:
    """Rail power follows the load of what each rail feeds; the total stays consistent."""

    def rail_power(name: str, base_power: int, when: float) -> int:
        upper = name.upper()
        cpu = knobs.cpu_core_load(when, 0) / 100.0
        gpu = knobs.gpu_load_at(when) / 100.0
        load = cpu if "CPU" in upper and "GPU" not in upper else gpu if "GPU" in upper else 0.5 * (cpu + gpu)
        return int(base_power * scale * (0.55 + 0.9 * load))

    rails = sample["power"]["rail"]
    base_rails = base["power"]["rail"]
    for name, rail in rails.items():
        base_power = int(base_rails[name]["power"])
        rail["power"] = rail_power(name, base_power, t)
        rail["avg"] = sum(rail_power(name, base_power, t - 2.0 * k) for k in range(5)) // 5
        if rail.get("volt"):
            rail["curr"] = int(rail["power"] * 1000 / rail["volt"])
    total = sample["power"]["tot"]
    rails_power = sum(r["power"] for r in rails.values())
    rails_avg = sum(r["avg"] for r in rails.values())
    if "name" not in total:
        total["power"], total["avg"] = rails_power, rails_avg
        return
    base_total = base["power"]["tot"]
    overhead = max(0, int(base_total["power"]) - sum(int(r["power"]) for r in base_rails.values()))
    total["power"] = overhead + rails_power
    total["avg"] = overhead + rails_avg
    if total.get("volt"):
        total["curr"] = int(total["power"] * 1000 / total["volt"])


def vary_processes(sample: Sample, knobs: Variation, t: float) -> None:
    """Process CPU use follows the CPU load."""
    for index, process in enumerate(sample.get("processes", [])):
        if len(process) > 6 and isinstance(process[6], (int, float)):
            process[6] = round(knobs.cpu_core_load(t, index) / 10.0, 3)
