"""Metric families of the board, built from flat reading keys: adding a reading to /metrics is one line."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.samples import Sample

DEVICE_LABELS = ("namespace", "device", "node")


@dataclass(frozen=True)
class Family:
    """One metric family fed by reading keys matching a pattern; captured groups become labels."""

    name: str
    help: str
    pattern: str
    labels: tuple[str, ...] = ()
    scale: float = 1.0

    def matcher(self) -> re.Pattern[str]:
        """The compiled, anchored key pattern."""
        return re.compile(f"^{self.pattern}$")


# Gauges read straight from flat reading keys: adding a reading to /metrics is one line here.
FAMILIES: tuple[Family, ...] = (
    Family("jetson_uptime_seconds", "Time since the board booted.", r"uptime"),
    Family("jetson_cpu_usage_ratio", "CPU busy ratio averaged over online cores.", r"cpu\.usage", scale=0.01),
    Family("jetson_cpu_core_usage_ratio", "CPU busy ratio of one core.", r"cpu\.core\.(\d+)\.usage",
           ("core",), 0.01),
    Family("jetson_cpu_core_frequency_hertz", "Current frequency of one CPU core.", r"cpu\.core\.(\d+)\.freq",
           ("core",)),
    Family("jetson_cpu_core_online", "1 when the CPU core is online.", r"cpu\.core\.(\d+)\.online", ("core",)),
    Family("jetson_emc_usage_ratio", "External memory controller load ratio.", r"emc\.usage", scale=0.01),
    Family("jetson_emc_frequency_hertz", "External memory controller frequency.", r"emc\.freq"),
    Family("jetson_temperature_celsius", "Temperature of an online thermal zone.", r"temperature\.([^.]+)",
           ("sensor",)),
    Family("jetson_power_watts", "Instantaneous power of a rail.", r"power\.rail\.([^.]+)\.power", ("rail",)),
    Family("jetson_power_average_watts", "Average power of a rail since the client connected.",
           r"power\.rail\.([^.]+)\.avg", ("rail",)),
    Family("jetson_rail_voltage_volts", "Voltage of a rail.", r"power\.rail\.([^.]+)\.voltage", ("rail",)),
    Family("jetson_rail_current_amperes", "Current of a rail.", r"power\.rail\.([^.]+)\.current", ("rail",)),
    Family("jetson_fan_speed_ratio", "Fan PWM duty ratio.", r"fan\.([^.]+)\.(\d+)\.speed", ("fan", "channel"), 0.01),
    Family("jetson_fan_rpm", "Fan speed in rotations per minute.", r"fan\.([^.]+)\.(\d+)\.rpm", ("fan", "channel")),
    Family("jetson_clocks_enabled", "1 when jetson_clocks pins the clocks at maximum.", r"jetson_clocks"),
    Family("jetson_engine_online", "1 when a hardware engine is running.", r"engine\.[^.]+\.([^.]+)\.online",
           ("engine",)),
    Family("jetson_engine_frequency_hertz", "Frequency of a hardware engine.", r"engine\.[^.]+\.([^.]+)\.freq",
           ("engine",)),
    Family("jetson_processes", "Processes jtop tracks on the GPU.", r"processes\.count"),
    Family("jetson_processes_cpu_ratio", "Summed CPU ratio of tracked processes.", r"processes\.cpu", scale=0.01),
    Family("jetson_processes_gpu_memory_bytes", "Summed GPU memory of tracked processes.",
           r"processes\.gpu_memory"),
    Family("jetson_power_mode_id", "Id of the current nvpmodel power mode.", r"nvpmodel\.id"),
)

INFO_KEYS = ("model", "module", "soc", "jetpack", "l4t", "cuda_arch", "part_number", "codename", "serial")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


class KeyRouter:
    """Finds the family (and label values) of a reading key; remembers the answer, board keys are few."""

    MAX_KEYS = 10_000  # a safety bound: a real board has a few hundred keys

    def __init__(self, families: tuple[Family, ...] = FAMILIES) -> None:
        self._patterns = [(f, f.matcher()) for f in families]
        self._routes: dict[str, tuple[Family, tuple[str, ...]] | None] = {}

    def route(self, key: str) -> tuple[Family, tuple[str, ...]] | None:
        """The family a key feeds and the label values its pattern captured, or None."""
        try:
            return self._routes[key]
        except KeyError:
            pass
        found = next(((f, m.groups()) for f, p in self._patterns if (m := p.match(key))), None)
        if len(self._routes) >= self.MAX_KEYS:
            self._routes.clear()
        self._routes[key] = found
        return found


Row = tuple[tuple[str, ...], float]


class RowGauge(GaugeMetricFamily):
    """A gauge family kept as (label values, value) rows: the mapper's encoder writes them as they are, and the
    library's samples are built only when something else reads them (another format, a test)."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        super().__init__(name, documentation, labels=labels)
        self.label_names = labels
        self.rows: list[Row] = []

    @property
    def samples(self) -> list[Sample]:
        """The rows as prometheus_client samples."""
        return [Sample(self.name, dict(zip(self.label_names, values, strict=True)), value, None, None)
                for values, value in self.rows]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        """Metric.__init__ sets an empty list: rows are the only content."""
        if value:
            raise TypeError("a RowGauge holds rows, not samples")


def reading_rows(readings: Mapping[str, Any], router: KeyRouter) -> dict[str, list[Row]]:
    """Label values and scaled value of every numeric reading, by family name (device labels not yet added)."""
    rows: dict[str, list[Row]] = {f.name: [] for f in FAMILIES}
    for key in sorted(readings):
        number = _number(readings[key])
        if number is None:
            continue
        routed = router.route(key)
        if routed is not None:
            family, labels = routed
            rows[family.name].append((labels, number * family.scale))
    return rows


def reading_gauges(readings: Mapping[str, Any], base: tuple[str, ...], router: KeyRouter | None = None,
                   rows: dict[str, list[Row]] | None = None) -> Iterator[Metric]:
    """Every pattern family, plus the few that need more than one key."""
    if rows is None:
        rows = reading_rows(readings, router or KeyRouter())
    for family in FAMILIES:
        gauge = RowGauge(family.name, family.help, (*DEVICE_LABELS, *family.labels))
        gauge.rows = [((*base, *labels), value) for labels, value in rows[family.name]]
        yield gauge
    yield from _composite(readings, base)


def _composite(readings: Mapping[str, Any], base: tuple[str, ...]) -> Iterator[Metric]:
    gpu = GaugeMetricFamily("jetson_gpu_usage_ratio", "GPU load ratio.", labels=(*DEVICE_LABELS, "gpu"))
    freq = GaugeMetricFamily("jetson_gpu_frequency_hertz", "GPU frequency.", labels=(*DEVICE_LABELS, "gpu"))
    name = str(readings.get("gpu.name", "gpu"))
    if _number(readings.get("gpu.usage")) is not None:
        gpu.add_metric([*base, name], float(readings["gpu.usage"]) * 0.01)
    if _number(readings.get("gpu.freq")) is not None:
        freq.add_metric([*base, name], float(readings["gpu.freq"]))
    yield gpu
    yield freq
    for metric, what in (("used", "Used"), ("total", "Total"), ("cached", "Cached")):
        family = GaugeMetricFamily(f"jetson_memory_{metric}_bytes", f"{what} memory.",
                                   labels=(*DEVICE_LABELS, "memory"))
        for memory in ("ram", "swap"):
            number = _number(readings.get(f"{memory}.{metric}"))
            if number is not None:
                family.add_metric([*base, memory], number)
        yield family
    total = GaugeMetricFamily("jetson_power_input_watts", "Total input power of the board.",
                              labels=(*DEVICE_LABELS, "source"))
    if _number(readings.get("power.total")) is not None:
        total.add_metric([*base, str(readings.get("power.total.source", "sum"))], float(readings["power.total"]))
    yield total
    profile = GaugeMetricFamily("jetson_fan_profile", "Active fan profile (1 for the active one).",
                                labels=(*DEVICE_LABELS, "fan", "profile"))
    if "fan.profile" in readings:
        profile.add_metric([*base, str(readings.get("fan.name", "fan")), str(readings["fan.profile"])], 1.0)
    yield profile
    info = GaugeMetricFamily("jetson_info", "Board facts; always 1.", labels=(*DEVICE_LABELS, *INFO_KEYS))
    if any(f"board.{k}" in readings for k in INFO_KEYS):
        info.add_metric([*base, *(str(readings.get(f"board.{k}", "")) for k in INFO_KEYS)], 1.0)
    yield info


def power_mode(snapshot: Mapping[str, Any] | None, readings: Mapping[str, Any],
               base: tuple[str, ...]) -> Metric:
    """A state set over the board's power modes: 1 for the current one."""
    family = GaugeMetricFamily("jetson_power_mode", "Current nvpmodel power mode (state set).",
                               labels=(*DEVICE_LABELS, "mode"))
    nvp = (snapshot or {}).get("nvpmodel")
    current = readings.get("nvpmodel.name")
    modes = [str(m) for m in nvp.get("models", [])] if isinstance(nvp, Mapping) else []
    if current is not None and str(current) not in modes:
        modes.append(str(current))
    for mode in modes:
        family.add_metric([*base, mode], 1.0 if mode == current else 0.0)
    return family
