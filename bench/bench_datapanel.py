"""Benchmark the data panel: CPU and RSS of a mapper pushing to every output against one pushing to MQTT only.

One run starts mosquitto, an HTTP receiver, rotel (OTLP), VictoriaMetrics (InfluxDB v2 line protocol),
redis-server and mariadbd on loopback ports, and two mappers side by side, each on its own jtop emulator
(`--profile`, 1 s samples), in standalone mode with three Devices of six properties at `--cycle` ms:

- **mqtt-only**: every property pushes to MQTT (QoS 1);
- **every-sink**: Device 1 pushes HTTP + Redis, Device 2 OTLP + MySQL, Device 3 MQTT + InfluxDB v2.

After `--warmup` s both are measured over the same `--seconds`: CPU time from /proc/<pid>/stat (as % of one
core) and VmHWM / VmRSS, and the ratio every-sink / mqtt-only. Both processes share the machine, so the ratio
is what to read. Not part of the test run. Usage:
.venv/bin/python bench/bench_datapanel.py [--seconds 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from bench_mapper import machine  # noqa: E402
from datapanel_servers import HttpReceiver, MariaDb, RedisServer, Rotel, VictoriaMetrics  # noqa: E402
from datapanel_support import PROPERTIES, device_document, model_document  # noqa: E402
from mapper_process import Mapper  # noqa: E402
from mosquitto import Mosquitto  # noqa: E402
from support import cpu_seconds, status_kib  # noqa: E402

from mapper.emulator.process import spawn_emulator  # noqa: E402


def manifests(path: Path, devices: list[dict[str, Any]]) -> Path:
    """The test DeviceModel and Devices as one standalone YAML file."""
    path.write_text(yaml.safe_dump_all([model_document(), *devices]))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="xavier-nx-jp5")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--cycle", type=int, default=1000, help="reportCycle of every property, ms")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="jmb", dir="/tmp") as tmp:
        work = Path(tmp)
        (work / "mqtt").mkdir()
        broker = Mosquitto(work / "mqtt")
        broker.start()
        stack.callback(broker.stop)
        http = HttpReceiver().start()
        stack.callback(http.stop)
        servers: list[Any] = []
        for make in (Rotel, VictoriaMetrics, RedisServer, MariaDb):
            server = make(work)
            stack.callback(server.stop)
            servers.append(server.start())
        rotel, victoria, redis, mariadb = servers

        def mqtt(prop: str) -> dict[str, Any]:
            return {"mqtt": {"address": broker.address, "topic": f"bench/{prop}", "qos": 1}}

        runs = {
            "mqtt-only": [device_document(name, mqtt, args.cycle) for name in ("d1", "d2", "d3")],
            "every-sink": [
                device_document("d1", lambda p: {"http": {"hostName": "http://127.0.0.1", "port": http.port,
                                                 "requestPath": f"/{p}"},
                                        "dbMethod": {"redis": {"redisClientConfig": {
                                            "addr": f"127.0.0.1:{redis.port}"}}}}, args.cycle),
                device_document("d2", lambda p: {"otel": {"endpointURL": rotel.url},
                                        "dbMethod": {"mysql": {"mysqlClientConfig": {
                                            "addr": f"127.0.0.1:{mariadb.port}", "database": MariaDb.database,
                                            "userName": MariaDb.user}}}}, args.cycle),
                device_document("d3", lambda p: {**mqtt(p), "dbMethod": {"influxdb2": {
                    "influxdb2ClientConfig": {"url": victoria.url, "org": "o", "bucket": "b"},
                    "influxdb2DataConfig": {"measurement": "jetson", "fieldKey": p}}}}, args.cycle),
            ],
        }
        (work / "redis-pw").write_text(RedisServer.password)
        (work / "mysql-pw").write_text(MariaDb.password)
        mappers = {}
        for name, devices in runs.items():
            folder = work / name
            folder.mkdir()
            emulator = spawn_emulator(args.profile, str(folder / "jtop.sock"), interval=1.0)
            stack.callback(emulator.terminate)
            files = manifests(folder / "devices.yaml", devices)
            mapper = Mapper(str(folder), {
                "grpc_server": {"socket_path": str(folder / "jetson.sock")},
                "source": {"jtop_socket": str(folder / "jtop.sock"), "interval": 1.0},
                "standalone": {"files": [str(files)]}, "log_level": "warning",
                "datapanel": {"redis": {"password_file": str(work / "redis-pw")},
                              "mysql": {"password_file": str(work / "mysql-pw")}},
            }).start()
            stack.callback(mapper.stop)
            mappers[name] = mapper
        time.sleep(args.warmup)
        pids = {name: m.process.pid for name, m in mappers.items() if m.process is not None}
        start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        began = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - began
        results: dict[str, dict[str, float]] = {}
        for name, pid in pids.items():
            mappers[name].alive_or_fail()
            results[name] = {
                "cpu_percent_of_one_core": round(100 * (cpu_seconds(pid) - start[name]) / elapsed, 2),
                "peak_rss_mib": round(status_kib(pid, "VmHWM") / 1024, 1),
                "rss_mib": round(status_kib(pid, "VmRSS") / 1024, 1),
            }
        values_per_second = 3 * len(PROPERTIES) * 1000 / args.cycle
        ratio = {key: round(results["every-sink"][key] / results["mqtt-only"][key], 2)
                 for key in ("cpu_percent_of_one_core", "peak_rss_mib")}
        metrics = mappers["every-sink"].get("/metrics")[1]
        sent = {line.split('sink="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines() if line.startswith("jetson_mapper_sink_sent_total{")}
        report = {"machine": machine(), "profile": args.profile, "seconds": round(elapsed, 1),
                  "values_per_second_per_mapper": values_per_second, "results": results,
                  "ratio_every_sink_over_mqtt_only": ratio, "every_sink_sent": sent}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
