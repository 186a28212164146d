"""Devices that push to every data-panel output, what each real server holds afterwards, and the emulator's truth.

Every record read back is (device, property, value, sample time in ms). The emulator is deterministic: the
value of `uptime` (a FLOAT here, so it names one sample) gives the raw sample, which the mapper's own
normaliser turns into the readings every other property of that sample must equal.
"""

from __future__ import annotations

import copy
import datetime
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from mapper_process import DEVICE_MODEL

from mapper.devices.values import Value, coerce_reading
from mapper.dmi.generated import api_pb2 as pb
from mapper.dmi.manifests import device_to_pb, model_to_pb
from mapper.emulator.board import EmulatedBoard
from mapper.emulator.profile import load_profile
from mapper.emulator.server import installed_jetson_stats_version
from mapper.readings.normaliser import normalise

PROFILE = "xavier-nx-jp5"
INTERVAL = 0.5  # emulator seconds between samples
NAMESPACE = "panel"
# property -> (reading, type): every type the mapper produces
PROPERTIES = {"uptime": ("uptime", "FLOAT"), "gpu_usage": ("gpu.usage", "FLOAT"), "cpu_usage": ("cpu.usage", "FLOAT"),
              "ram_used": ("ram.used", "INT"), "fan_profile": ("fan.profile", "STRING"),
              "jetson_clocks": ("jetson_clocks", "BOOLEAN")}
REPORT_CYCLE_MS = 1000


@dataclass(frozen=True)
class Record:
    """One value as a receiver holds it."""

    device: str
    prop: str
    value: Value
    ms: int


def model_document() -> dict[str, Any]:
    """The bundled DeviceModel with `uptime` as a FLOAT (one uptime, one sample), in namespace NAMESPACE."""
    document: dict[str, Any] = yaml.safe_load((DEVICE_MODEL / "jetson-model.yaml").read_text())
    for prop in document["spec"]["properties"]:
        if prop["name"] in PROPERTIES:
            prop["type"] = PROPERTIES[prop["name"]][1]
    document["metadata"]["namespace"] = NAMESPACE
    return document


def model() -> pb.DeviceModel:
    """model_document() converted like EdgeCore."""
    document = model_document()
    return model_to_pb(document, document["metadata"]["name"], NAMESPACE)


def device_document(name: str, push: Callable[[str], dict[str, Any]],
                    cycle_ms: int = REPORT_CYCLE_MS) -> dict[str, Any]:
    """A Device in CRD spelling with `push(property)` as each property's pushMethod."""
    document: dict[str, Any] = yaml.safe_load((DEVICE_MODEL / "jetson-xavier.yaml").read_text())
    document["metadata"] = {"name": name, "namespace": NAMESPACE}
    template = document["spec"]["properties"][0]
    properties = []
    for prop_name, (reading, _type) in PROPERTIES.items():
        prop = copy.deepcopy(template)
        prop.pop("desired", None)
        prop.update(name=prop_name, collectCycle=cycle_ms, reportCycle=cycle_ms, reportToCloud=True,
                    pushMethod=push(prop_name))
        prop["visitors"]["configData"] = {"reading": reading}
        properties.append(prop)
    document["spec"]["properties"] = properties
    document["spec"].pop("methods", None)
    return document


def device(name: str, push: Callable[[str], dict[str, Any]]) -> pb.Device:
    """device_document() converted like EdgeCore."""
    return device_to_pb(device_document(name, push), name, NAMESPACE)


def typed(text: str, type_: str) -> Value:
    """A value written as text (form body, Redis, MySQL) read back by its DeviceModel type."""
    if type_ == "BOOLEAN":
        assert text in ("true", "false"), text
        return text == "true"
    if type_ == "INT":
        return int(text)
    if type_ == "FLOAT":
        return float(text)
    return text


class Oracle:
    """What the emulator served for a given uptime."""

    def __init__(self) -> None:
        self.profile = load_profile(PROFILE)
        self.board = EmulatedBoard(self.profile, installed_jetson_stats_version() or self.profile.jetson_stats)
        self._first = float(self.profile.samples[0]["uptime"])

    def nearest(self, uptime: float) -> float:
        """The uptime of the sample nearest to a rounded one."""
        t = uptime - self._first
        return round(self._first + round(round(t / INTERVAL) * INTERVAL, 2), 2)

    def values(self, uptime: float) -> dict[str, Value]:
        """Every test property of the sample with this uptime, typed as the mapper types it."""
        t = round(uptime - self._first, 2)
        raw = json.loads(json.dumps(self.board.sample(round(t / INTERVAL), t)))
        assert abs(float(raw["uptime"]) - uptime) < 1e-6, (raw["uptime"], uptime)
        snapshot = {"uptime": raw["uptime"], "cpu": raw["cpu"], "gpu": raw["gpu"], "memory": raw["mem"],
                    "fan": raw["fan"], "temperature": raw["temperature"], "power": raw["power"],
                    "engine": raw["engines"], "jetson_clocks": {"enable": raw["jc"]["enable"]}}
        readings = normalise(snapshot)
        return {prop: coerce_reading(readings[reading], type_) for prop, (reading, type_) in PROPERTIES.items()}


def samples(records: Iterable[Record]) -> dict[tuple[str, int], dict[str, Value]]:
    """Records grouped into samples: (device, sample ms) -> {property: value}."""
    grouped: dict[tuple[str, int], dict[str, Value]] = defaultdict(dict)
    for record in records:
        grouped[(record.device, record.ms)][record.prop] = record.value
    return grouped


def check_against_emulator(records: list[Record], oracle: Oracle, props: Iterable[str],
                           what: str, float_digits: int | None = None) -> dict[str, list[int]]:
    """Every sample read back equals the emulator's (value and type); sample times follow the board's uptime.

    `float_digits`: significant digits the server keeps of a float (None: all). Returns sample times per device.
    """
    wanted = set(props)
    times: dict[str, list[tuple[int, float]]] = defaultdict(list)
    grouped = sorted(samples(records).items())
    edges = {dev: (min(ms for (d, ms), _ in grouped if d == dev), max(ms for (d, ms), _ in grouped if d == dev))
             for dev in {d for (d, _ms), _ in grouped}}
    for (dev, ms), values in grouped:
        if set(values) != wanted and ms in edges[dev]:
            continue  # the first or last cycle may be cut by the device's registration or removal
        assert set(values) == wanted, f"{what} {dev} at {ms}: got properties {sorted(values)}"
        uptime = values["uptime"]
        assert isinstance(uptime, float), (what, uptime)
        expected = oracle.values(uptime if float_digits is None else oracle.nearest(uptime))
        for prop in wanted:
            got, want = values[prop], expected[prop]
            if float_digits is not None and isinstance(want, float) and isinstance(got, float):
                got, want = float(f"{got:.{float_digits}g}"), float(f"{want:.{float_digits}g}")
            assert type(got) is type(want) and got == want, f"{what} {dev} {prop} at {ms}: {got!r} != {want!r}"
        times[dev].append((ms, uptime))
    for dev, pairs in times.items():
        first_ms, first_up = pairs[0]
        for ms, up in pairs:  # the sample's time, not the write's: it moves with the board's uptime
            assert abs((ms - first_ms) / 1000 - (up - first_up)) < 0.4, f"{what} {dev}: {ms} vs uptime {up}"
    return {dev: [ms for ms, _ in pairs] for dev, pairs in times.items()}


def http_records(bodies: Iterable[bytes]) -> list[Record]:
    """JSON bodies (datapanel.http.body: json) as records."""
    records = []
    for body in bodies:
        doc = json.loads(body)
        records.append(Record(doc["device"], doc["property"], doc["value"], int(doc["timestamp"])))
    return records


def redis_records(client: Any, devices: Iterable[str]) -> list[Record]:
    """Every sorted-set member of the devices; checks the DataModel shape and that score = TimeStamp."""
    records = []
    for dev in devices:
        for member, score in client.zrange(dev, 0, -1, withscores=True):
            model_ = json.loads(member)
            assert list(model_) == ["DeviceName", "PropertyName", "Namespace", "Value", "Type", "TimeStamp"], model_
            assert model_["DeviceName"] == dev and model_["Namespace"] == NAMESPACE
            assert model_["Type"] == PROPERTIES[model_["PropertyName"]][1].lower()
            assert score == model_["TimeStamp"], (score, model_)
            assert isinstance(model_["Value"], str)
            records.append(Record(dev, model_["PropertyName"], typed(model_["Value"], model_["Type"].upper()),
                                  int(model_["TimeStamp"])))
    return records


def mysql_records(query: Callable[..., list[tuple[Any, ...]]], dev: str) -> list[Record]:
    """Rows of every property table of a device (ts local DATETIME(3), field text)."""
    records = []
    for prop, (_reading, type_) in PROPERTIES.items():
        table = f"{NAMESPACE}/{dev}/{prop}".replace("`", "``")
        for ts, field in query(f"SELECT ts, field FROM `{table}` ORDER BY id"):
            assert isinstance(ts, datetime.datetime) and ts.tzinfo is None
            records.append(Record(dev, prop, typed(field, type_), round(ts.timestamp() * 1000)))
    return records


def influx_records(series: Iterable[Mapping[str, Any]], measurement: str) -> list[Record]:
    """VictoriaMetrics series `<measurement>_<fieldKey>` with tags device and property as records.

    VictoriaMetrics keeps floats only: numbers come back as floats, booleans as 1/0.
    """
    records = []
    for item in series:
        labels = item["metric"]
        if not labels["__name__"].startswith(measurement + "_"):
            continue
        prop = labels["property"]
        assert labels["__name__"] == f"{measurement}_{prop}" and labels["node"] == "panel-node", labels
        type_ = PROPERTIES[prop][1]
        for value, ms in zip(item["values"], item["timestamps"], strict=True):
            got: Value = bool(value) if type_ == "BOOLEAN" else (int(value) if type_ == "INT" else float(value))
            records.append(Record(labels["device"], prop, got, int(ms)))
    return records
