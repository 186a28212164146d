"""How the mapper's cost grows with its work: CPU per second and RSS against properties, devices, sinks, scrapes.

From a base point (1 device, 22 properties, MQTT, one scrape a second) one dimension moves at a time:
properties per device (22, 100, 400: the catalogue plus custom `reading` properties), devices per mapper (1, 4, 16),
sinks (none, MQTT, every data-panel sink the mapper has), scrape rate (0, 1/s, 10/s). Every property is reported
every second to every sink that is on. Each point: a fresh emulator (1 s sampling) and mapper, --warmup seconds,
then CPU and peak RSS over --seconds. The script prints a table, says how each dimension grows (flat, linear,
worse) and, with --plot, writes a PNG (needs matplotlib: `pip install matplotlib`).

Not part of the test run. Usage: .venv/bin/python bench/bench_curve.py [--seconds 30] [--json f] [--plot f.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from support import DEVICE_FILES, Scraper, cpu_seconds, emulator, mapper, mosquitto, status_kib

from mapper.readings.normaliser import normalise

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "jtop" / "xavier-nx_jp5_built.json"
BASE = {"properties": 22, "devices": 1, "sinks": "mqtt", "scrapes_per_second": 1.0}
DIMENSIONS: dict[str, list[Any]] = {
    "properties": [22, 100, 400],
    "devices": [1, 4, 16],
    "sinks": ["none", "mqtt", "all"],
    "scrapes_per_second": [0.0, 1.0, 10.0],
}


@dataclass
class Point:
    """One measured configuration."""

    properties: int
    devices: int
    sinks: str
    scrapes_per_second: float
    cpu_percent: float = 0.0
    peak_rss_mib: float = 0.0
    pushes_per_second: float = 0.0
    notes: list[str] = field(default_factory=list)


def numeric_readings() -> list[str]:
    """Reading keys with numbers on the emulated Xavier NX, for custom properties."""
    readings = normalise(json.loads(FIXTURE.read_text(encoding="utf-8")))
    return sorted(k for k, v in readings.items() if isinstance(v, int | float) and not isinstance(v, bool))


class Receivers:
    """The data-panel servers of the tests (HTTP, rotel, VictoriaMetrics, Redis, MariaDB) for sinks=all."""

    def __init__(self, stack: ExitStack, workdir: Path) -> None:
        sys.path.insert(0, str(REPO / "tests"))
        from datapanel_servers import HttpReceiver, MariaDb, RedisServer, Rotel, VictoriaMetrics

        self.http, self.rotel, self.victoria = HttpReceiver(), Rotel(workdir), VictoriaMetrics(workdir)
        self.redis, self.mariadb = RedisServer(workdir), MariaDb(workdir)
        for server in (self.http, self.rotel, self.victoria, self.redis, self.mariadb):
            stack.callback(server.stop)
            server.start()
        (workdir / "redis-pw").write_text(RedisServer.password)
        (workdir / "mysql-pw").write_text(MariaDb.password)
        self.settings = {"redis": {"password_file": str(workdir / "redis-pw")},
                         "mysql": {"password_file": str(workdir / "mysql-pw")}}

    def push(self, index: int, name: str, broker: int) -> dict[str, Any]:
        """Property `index` pushes to MQTT, HTTP or OTLP and writes to InfluxDB, Redis or MySQL, in turn."""
        pushes: list[dict[str, Any]] = [
            {"mqtt": {"address": f"tcp://127.0.0.1:{broker}", "topic": f"bench/{name}", "qos": 0}},
            {"http": {"hostName": "http://127.0.0.1", "port": self.http.port, "requestPath": f"/{name}"}},
            {"otel": {"endpointURL": self.rotel.url}},
        ]
        push = pushes[index % 3]
        push["dbMethod"] = [
            {"influxdb2": {"influxdb2ClientConfig": {"url": self.victoria.url, "org": "o", "bucket": "b"},
                           "influxdb2DataConfig": {"measurement": "jetson", "fieldKey": name}}},
            {"redis": {"redisClientConfig": {"addr": f"127.0.0.1:{self.redis.port}"}}},
            {"mysql": {"mysqlClientConfig": {"addr": f"127.0.0.1:{self.mariadb.port}",
                                             "database": self.mariadb.database, "userName": self.mariadb.user}}},
        ][index % 3]
        return push


def devices_yaml(point: Point, broker: int | None, path: Path, receivers: Receivers | None = None) -> Path:
    """The demo Device, grown to the point's properties and copied to its device count."""
    template = yaml.safe_load(DEVICE_FILES[1].read_text(encoding="utf-8"))
    base_properties = template["spec"]["properties"]
    keys = numeric_readings()
    properties = []
    for index in range(point.properties):
        if index < len(base_properties):
            prop = dict(base_properties[index])
            prop.pop("desired", None)
        else:
            key = keys[index % len(keys)]
            prop = {"name": f"reading-{index}", "visitors": {"protocolName": "jetson", "configData": {"reading": key}}}
        prop.update({"collectCycle": 1000, "reportCycle": 1000, "reportToCloud": True})
        prop.pop("pushMethod", None)
        if receivers is not None and broker is not None:
            prop["pushMethod"] = receivers.push(index, prop["name"], broker)
        elif point.sinks == "mqtt" and broker is not None:
            prop["pushMethod"] = {"mqtt": {"address": f"tcp://127.0.0.1:{broker}",
                                           "topic": f"bench/{prop['name']}", "qos": 0}}
        properties.append(prop)
    documents = []
    for number in range(point.devices):
        device = json.loads(json.dumps(template))
        device["metadata"]["name"] = f"jetson-{number}"
        device["spec"]["properties"] = properties
        device["spec"].pop("methods", None)
        documents.append(device)
    path.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
    return path


def measure(point: Point, warmup: float, seconds: float) -> Point:
    """Run one configuration and fill in its figures."""
    workdir = Path(tempfile.mkdtemp(prefix="jmk", dir="/tmp"))
    try:
        with ExitStack() as stack:
            broker = stack.enter_context(mosquitto(workdir)) if point.sinks != "none" else None
            receivers = Receivers(stack, workdir) if point.sinks == "all" else None
            jtop_socket = stack.enter_context(emulator(workdir))
            files = [DEVICE_FILES[0], devices_yaml(point, broker, workdir / "devices.yaml", receivers)]
            extra = {"datapanel": receivers.settings} if receivers is not None else None
            process, port = stack.enter_context(mapper(workdir, jtop_socket, files, extra))
            scraper = Scraper(port)
            time.sleep(warmup)
            before, started = cpu_seconds(process.pid), time.monotonic()
            scrapes = 0
            while (elapsed := time.monotonic() - started) < seconds:
                if point.scrapes_per_second:
                    scraper.get()
                    scrapes += 1
                    time.sleep(max(0.0, started + scrapes / point.scrapes_per_second - time.monotonic()))
                else:
                    time.sleep(min(1.0, seconds - elapsed))
            wall = time.monotonic() - started
            point.cpu_percent = 100.0 * (cpu_seconds(process.pid) - before) / wall
            point.peak_rss_mib = status_kib(process.pid, "VmHWM") / 1024.0
            if broker is not None:
                point.pushes_per_second = float(point.properties * point.devices) * (2 if receivers else 1)
                sent: dict[str, float] = {}
                for line in scraper.get().decode().splitlines():
                    if line.startswith("jetson_mapper_sink_sent_total{") and 'sink="dmi"' not in line:
                        sink = line.split('sink="', 1)[1].split('"', 1)[0]
                        sent[sink] = sent.get(sink, 0.0) + float(line.rsplit(" ", 1)[1])
                idle = sorted(name for name, count in sent.items() if not count)
                if idle:
                    raise RuntimeError(f"sinks delivered nothing: {idle}")
                point.notes.append("sent: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(sent.items())))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return point


def growth(dimension: str, points: list[Point]) -> str:
    """Flat, linear or worse: the extra CPU per unit of work, compared between the two steps."""
    if dimension == "sinks" or len(points) < 3:
        return "see table"
    xs = [float(getattr(p, dimension)) for p in points]
    ys = [p.cpu_percent for p in points]
    first, second = (ys[1] - ys[0]) / (xs[1] - xs[0]), (ys[2] - ys[1]) / (xs[2] - xs[1])
    if max(ys) - min(ys) < 0.15 * max(ys[0], 0.05):
        return "flat"
    return "linear" if second <= 1.5 * max(first, 1e-9) else f"worse than linear ({first:.4f} then {second:.4f} %/unit)"


def report(results: dict[str, list[Point]]) -> str:
    """Markdown table per dimension."""
    lines = ["| dimension | value | CPU % of one core | peak RSS MiB | pushes/s | growth |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for dimension, points in results.items():
        verdict = growth(dimension, points)
        for number, point in enumerate(points):
            lines.append(f"| {dimension} | {getattr(point, dimension)} | {point.cpu_percent:.2f} | "
                         f"{point.peak_rss_mib:.1f} | {point.pushes_per_second:.0f} | "
                         f"{verdict if number == 0 else ''} |")
    return "\n".join(lines)


def plot(results: dict[str, list[Point]], path: Path) -> None:
    """One panel per dimension: CPU % and peak RSS."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.4))
    for axis, (dimension, points) in zip(axes, results.items(), strict=True):
        values = [getattr(p, dimension) for p in points]
        labels = values if all(isinstance(v, int | float) for v in values) else [str(v) for v in values]
        axis.plot(labels, [p.cpu_percent for p in points], marker="o", color="tab:blue")
        axis.set_xlabel(dimension.replace("_", " "))
        axis.set_ylabel("CPU % of one core", color="tab:blue")
        axis.set_ylim(0, 1.15 * max(p.cpu_percent for p in points))
        twin = axis.twinx()
        twin.plot(labels, [p.peak_rss_mib for p in points], marker="s", color="tab:orange")
        twin.set_ylabel("peak RSS MiB", color="tab:orange")
        twin.set_ylim(0, 1.15 * max(p.peak_rss_mib for p in points))
    figure.suptitle("jetson-mapper cost as its work grows (one dimension at a time, 1 s sampling)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring (default 8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds measured per point (default 30)")
    parser.add_argument("--only", action="append", choices=sorted(DIMENSIONS), help="measure only these dimensions")
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--plot", help="write a PNG of the curves")
    parser.add_argument("--from-json", help="measure nothing: report and plot the figures of an earlier --json")
    args = parser.parse_args()
    results: dict[str, list[Point]] = {}
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        results = {d: [Point(**p) for p in points] for d, points in saved.items()}
    for dimension, values in DIMENSIONS.items():
        if args.from_json:
            break
        if args.only and dimension not in args.only:
            continue
        results[dimension] = [measure(Point(**{**BASE, dimension: value}), args.warmup, args.seconds)
                              for value in values]
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps({d: [asdict(p) for p in ps] for d, ps in results.items()}, indent=2),
                                   encoding="utf-8")
    if args.plot:
        plot(results, Path(args.plot))
    return 0


if __name__ == "__main__":
    sys.exit(main())
