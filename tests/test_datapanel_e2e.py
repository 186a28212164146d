"""Every data-panel output end to end: one mapper on the emulator, registered with a fake EdgeCore, three Devices
pushing to a real HTTP server, rotel (OTLP), VictoriaMetrics (InfluxDB v2 line protocol), redis-server and
mariadbd for 20 s; then every database and the OTLP collector stopped for 20 s together and restarted.

The scenario runs once, in one test; each output is checked in a subtest of its own that reads it back from its
real server and compares it with what the emulator served.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from common import wait_until
from datapanel_servers import HttpReceiver, MariaDb, RedisServer, Rotel, VictoriaMetrics, have
from datapanel_support import (
    NAMESPACE,
    PROPERTIES,
    Oracle,
    Record,
    check_against_emulator,
    device,
    http_records,
    influx_records,
    model,
    mysql_records,
    redis_records,
)
from fake_edgecore import FakeEdgeCore
from mapper_process import Emulator, Mapper

SERVERS = ("redis-server", "mariadbd", "victoria-metrics")
SERVERS = ("redis-server", "mariadbd", "victoria-metrics")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not all(have(b) for b in SERVERS),
                                 reason="needs redis-server, mariadb-server, victoria-metrics (.ci/run installs them)")]

PUSH_SECONDS = 21.0
OUTAGE_SECONDS = 20.0
INFLUX_QUEUE = 12  # datapanel.influxdb2.queue_size: far smaller than the outage, so values are dropped
NUMERIC = [p for p, (_r, t) in PROPERTIES.items() if t != "STRING"]


@dataclass
class Scenario:
    """What the run left behind for the tests to read."""

    mapper: Mapper
    http: HttpReceiver
    rotel: Rotel
    victoria: VictoriaMetrics
    redis: RedisServer
    mariadb: MariaDb
    edgecore: FakeEdgeCore
    outage: tuple[float, float] = (0.0, 0.0)  # wall seconds: servers stopped, servers back
    during: dict[str, Any] = field(default_factory=dict)  # what flowed while they were down
    metrics: dict[tuple[str, str, str], float] = field(default_factory=dict)


def sink_metrics(text: str) -> dict[tuple[str, str, str], float]:
    """(family, sink, target) -> value of every jetson_mapper_sink_* series."""
    found = {}
    for match in re.finditer(r'^(jetson_mapper_sink_\w+)\{node="[^"]*",sink="([^"]+)",target="([^"]+)"\} (\S+)$',
                             text, re.M):
        found[(match[1], match[2], match[3])] = float(match[4])
    return found


def datapanel_devices(scenario: Scenario) -> list[Any]:
    """panel-http-redis, panel-otel-mysql and panel-influx with every property pushing to their outputs."""
    influx = {"influxdb2ClientConfig": {"url": scenario.victoria.url, "org": "jetson", "bucket": "board"},
              "influxdb2DataConfig": {"measurement": "jetson", "fieldKey": "", "tag": {}}}

    def influx_of(prop: str) -> dict[str, Any]:
        config = {"influxdb2ClientConfig": influx["influxdb2ClientConfig"],
                  "influxdb2DataConfig": {"measurement": "jetson", "fieldKey": prop,
                                          "tag": {"device": "panel-influx", "property": prop, "node": "panel-node"}}}
        return {"dbMethod": {"influxdb2": config}}

    return [
        device("panel-http-redis", lambda prop: {
            "http": {"hostName": "http://127.0.0.1", "port": scenario.http.port, "requestPath": f"/jetson/{prop}",
                     "timeout": 2000},
            "dbMethod": {"redis": {"redisClientConfig": {"addr": f"127.0.0.1:{scenario.redis.port}", "db": 3,
                                                         "poolsize": 4, "minIdleConns": 2}}}}),
        device("panel-otel-mysql", lambda prop: {
            "otel": {"endpointURL": scenario.rotel.url},
            "dbMethod": {"mysql": {"mysqlClientConfig": {"addr": f"127.0.0.1:{scenario.mariadb.port}",
                                                         "database": MariaDb.database, "userName": MariaDb.user}}}}),
        device("panel-influx", influx_of),
    ]


@contextmanager
def scenario_in(workdir: Path) -> Iterator[Scenario]:
    """Run the whole story once; the servers keep their data until the block ends."""
    short = Path(os.path.join("/tmp", f"jmp{os.getpid()}"))
    short.mkdir(exist_ok=True)
    with ExitStack() as stack:
        stack.callback(lambda: __import__("shutil").rmtree(short, ignore_errors=True))
        servers: list[Any] = []
        for make in (HttpReceiver, lambda: Rotel(workdir), lambda: VictoriaMetrics(workdir),
                     lambda: RedisServer(workdir), lambda: MariaDb(workdir)):
            server = make()
            stack.callback(server.stop)  # registered first: a later server failing to start stops this one
            servers.append(server.start())
        (workdir / "token").write_text("influx-Token-1\n")
        (workdir / "redis-password").write_text(RedisServer.password + "\n")
        (workdir / "mysql-password").write_text(MariaDb.password + "\n")
        edgecore = FakeEdgeCore(str(short / "dmi.sock")).start()
        stack.callback(edgecore.stop)
        emulator = Emulator(str(short), interval=0.5).start()
        stack.callback(emulator.stop)
        mapper = Mapper(str(workdir), {
            "grpc_server": {"socket_path": str(short / "jetson.sock")},
            "common": {"edgecore_sock": edgecore.socket_path},
            "source": {"jtop_socket": emulator.socket, "interval": 0.5},
            "node_name": "panel-node",
            "dmi": {"max_request_rate": 0.9, "burst": 5},
            "datapanel": {"backoff_initial": 0.5, "backoff_max": 2.0, "timeout": 2.0,
                          "http": {"body": "json"}, "influxdb2": {"queue_size": INFLUX_QUEUE,
                                                                   "token_file": str(workdir / "token")},
                          "redis": {"password_file": str(workdir / "redis-password")},
                          "mysql": {"password_file": str(workdir / "mysql-password")}},
        })
        run = Scenario(mapper, *servers, edgecore)  # type: ignore[arg-type]
        edgecore.set_devices([(model(), dev) for dev in datapanel_devices(run)])
        mapper.start()
        stack.callback(mapper.stop)
        wait_until(lambda: len(run.http.received()) >= 10, "HTTP pushes", timeout=30)
        time.sleep(PUSH_SECONDS)

        down = [run.rotel, run.victoria, run.redis, run.mariadb]
        start = time.time()
        for server in down:
            server.stop()
        http_before, reports_before = len(run.http.received()), len(edgecore.calls_of("ReportDeviceStatus"))
        scrapes = []
        while time.time() - start < OUTAGE_SECONDS:
            scrapes.append(mapper.get("/metrics"))
            time.sleep(1.0)
        run.during = {"http": len(run.http.received()) - http_before, "scrapes": scrapes,
                      "reports": len(edgecore.calls_of("ReportDeviceStatus")) - reports_before,
                      "metrics": sink_metrics(scrapes[-1][1])}
        for server in down:
            server.start()
        run.outage = (start, time.time())

        def drained() -> bool:
            values = sink_metrics(mapper.get("/metrics")[1])
            queued = [v for (name, _s, _t), v in values.items() if name == "jetson_mapper_sink_queued"]
            up = [v for (name, _s, _t), v in values.items() if name == "jetson_mapper_sink_up"]
            return len(queued) >= 6 and not any(queued) and all(up)

        wait_until(drained, "every queue drained after the outage", timeout=60)
        for dev in datapanel_devices(run):  # no more values: the servers' contents and the counters are final
            edgecore.remove_device(dev.namespace, dev.name)
        wait_until(drained, "the last values delivered", timeout=30)
        time.sleep(1.5)  # rotel prints what it received with a short delay
        run.metrics = sink_metrics(mapper.get("/metrics")[1])
        mapper.alive_or_fail()
        yield run


def in_outage(scenario: Scenario, times: list[int]) -> list[int]:
    """Sample times (ms) taken while the servers were down."""
    start, end = scenario.outage
    return [ms for ms in times if start * 1000 + 500 <= ms <= end * 1000 - 500]


def assert_nothing_lost(scenario: Scenario, times: list[int], sink: str, target: str) -> None:
    """Samples of the outage arrived, one per reportCycle, none dropped, counters exact."""
    outage = in_outage(scenario, times)
    assert len(outage) >= OUTAGE_SECONDS - 3, f"{sink}: only {len(outage)} samples of the outage arrived"
    gaps = [b - a for a, b in zip(sorted(times), sorted(times)[1:], strict=False)]
    assert max(gaps) < 2500, f"{sink}: a gap of {max(gaps)} ms in the samples"
    metric = scenario.metrics
    assert metric[("jetson_mapper_sink_dropped_total", sink, target)] == 0
    assert metric[("jetson_mapper_sink_failed_total", sink, target)] >= 1, "the outage was seen"
    assert metric[("jetson_mapper_sink_sent_total", sink, target)] == len(times) * len(PROPERTIES)


def check_http_push_delivers_every_sample_over_one_connection(scenario: Scenario) -> None:
    received = scenario.http.received()
    assert {r.path for r in received} == {f"/jetson/{prop}" for prop in PROPERTIES}
    assert {r.content_type for r in received} == {"application/json"}
    assert len({r.client_port for r in received}) == 1, "one keep-alive connection"
    times = check_against_emulator(http_records(r.body for r in received), Oracle(), PROPERTIES, "http")
    assert max(times["panel-http-redis"]) - min(times["panel-http-redis"]) >= (PUSH_SECONDS + OUTAGE_SECONDS) * 1000
    assert scenario.metrics[("jetson_mapper_sink_sent_total", "http", f"http://127.0.0.1:{scenario.http.port}")] \
        == len(received)


def check_a_database_outage_slows_neither_http_nor_twins_nor_metrics(scenario: Scenario) -> None:
    during = scenario.during
    assert during["http"] >= (OUTAGE_SECONDS - 3) * len(PROPERTIES), during["http"]
    assert during["reports"] >= 5, "twin reports kept reaching EdgeCore"
    assert all(status == 200 for status, _ in during["scrapes"])
    uptimes = [float(m[1]) for _, text in during["scrapes"]
               if (m := re.search(r"^jetson_uptime_seconds\{[^}]*\} (\S+)$", text, re.M))]
    assert len(uptimes) >= OUTAGE_SECONDS - 2 and uptimes[-1] - uptimes[0] >= OUTAGE_SECONDS - 3
    metrics = during["metrics"]
    assert metrics[("jetson_mapper_sink_up", "redis", f"redis://127.0.0.1:{scenario.redis.port}/3")] == 0
    assert metrics[("jetson_mapper_sink_queued", "mysql",
                    f"mysql://127.0.0.1:{scenario.mariadb.port}/{MariaDb.database}")] > 0


def check_redis_holds_every_sample_and_the_outage(scenario: Scenario) -> None:
    records = redis_records(scenario.redis.client(db=3), ["panel-http-redis"])
    times = check_against_emulator(records, Oracle(), PROPERTIES, "redis")["panel-http-redis"]
    assert max(times) - min(times) >= (PUSH_SECONDS + OUTAGE_SECONDS) * 1000
    assert_nothing_lost(scenario, times, "redis", f"redis://127.0.0.1:{scenario.redis.port}/3")


def check_mysql_holds_every_sample_and_the_outage(scenario: Scenario) -> None:
    columns = scenario.mariadb.query(
        "SELECT column_name, column_type FROM information_schema.columns WHERE table_name = %s "
        "ORDER BY ordinal_position", f"{NAMESPACE}/panel-otel-mysql/gpu_usage")
    assert [(str(n), str(t)) for n, t in columns] == [("id", "int(11)"), ("ts", "datetime(3)"), ("field", "text")]
    records = mysql_records(scenario.mariadb.query, "panel-otel-mysql")
    times = check_against_emulator(records, Oracle(), PROPERTIES, "mysql")["panel-otel-mysql"]
    assert max(times) - min(times) >= (PUSH_SECONDS + OUTAGE_SECONDS) * 1000
    assert_nothing_lost(scenario, times, "mysql", f"mysql://127.0.0.1:{scenario.mariadb.port}/{MariaDb.database}")


def check_otlp_gauges_hold_every_sample_and_the_outage(scenario: Scenario) -> None:
    points = scenario.rotel.points()
    assert points, scenario.rotel.output()[-2000:]
    assert {p.scope for p in points} == {"github.com/kubeedge/Template/data/dbmethod/otel"}
    assert {p.data_type for p in points} == {"Gauge"}
    resource = points[0].resource
    assert resource["device.id"] == f"{NAMESPACE}/panel-otel-mysql" and resource["node"] == "panel-node"
    assert resource["namespace"] == NAMESPACE and resource["device"] == "panel-otel-mysql"
    records = []
    for point in points:
        type_ = PROPERTIES[point.name][1]
        value: Any = bool(point.value) if type_ == "BOOLEAN" else (int(point.value) if type_ == "INT"
                                                                   else float(point.value))
        if type_ == "INT":
            assert point.value == int(point.value)
        records.append(Record("panel-otel-mysql", point.name, value, point.time_unix_nano // 10**6))
    times = check_against_emulator(records, Oracle(), NUMERIC, "otel")["panel-otel-mysql"]
    assert max(times) - min(times) >= (PUSH_SECONDS + OUTAGE_SECONDS) * 1000
    target = scenario.rotel.url
    outage = in_outage(scenario, times)
    assert len(outage) >= OUTAGE_SECONDS - 3, f"only {len(outage)} samples of the outage arrived"
    assert scenario.metrics[("jetson_mapper_sink_dropped_total", "otel", target)] == len(times)  # STRING values
    assert scenario.metrics[("jetson_mapper_sink_sent_total", "otel", target)] == len(times) * len(NUMERIC)
    assert scenario.metrics[("jetson_mapper_sink_failed_total", "otel", target)] >= 1


def check_influxdb_points_are_typed_and_what_a_full_queue_drops_is_counted(scenario: Scenario) -> None:
    records = influx_records(scenario.victoria.export(), "jetson")
    assert {r.device for r in records} == {"panel-influx"}
    # VictoriaMetrics stores a string field as 0; upstream's all-strings points would all read back as 0
    times = check_against_emulator([r for r in records if r.prop != "fan_profile"], Oracle(), NUMERIC,
                                   "influxdb2", float_digits=11)["panel-influx"]  # what VictoriaMetrics keeps
    assert max(times) - min(times) >= (PUSH_SECONDS + OUTAGE_SECONDS) * 1000
    target = scenario.victoria.url
    sent = scenario.metrics[("jetson_mapper_sink_sent_total", "influxdb2", target)]
    dropped = scenario.metrics[("jetson_mapper_sink_dropped_total", "influxdb2", target)]
    assert sent == len(records)
    outage = in_outage(scenario, times)
    start, end = (round(t * 1000) for t in scenario.outage)
    around = [ms - start for ms in times if start - 3000 <= ms <= end + 3000]
    why = f"outage {end - start} ms, samples around it (ms after its start): {around}, sent {sent}, dropped {dropped}"
    assert len(outage) * len(PROPERTIES) <= INFLUX_QUEUE + len(PROPERTIES), why  # at most the queue
    before = max(ms for ms in times if ms < start + 500)
    after = min(ms for ms in times if ms > start + 500 and ms not in outage)
    # the HTTP push of another device ran on the same ticks through the outage: it tells how many cycles there were
    http_times = {int(doc["timestamp"]) for doc in map(json.loads, (r.body for r in scenario.http.received()))}
    cycles = len([ms for ms in http_times if before + 300 < ms < after - 300])
    missing_cycles = cycles - len(outage)
    assert missing_cycles >= OUTAGE_SECONDS - 6, why  # far more than the queue holds went missing ...
    assert abs(missing_cycles * len(PROPERTIES) - dropped) <= 2 * len(PROPERTIES), why  # ... and was counted


CHECKS = (check_http_push_delivers_every_sample_over_one_connection,
          check_a_database_outage_slows_neither_http_nor_twins_nor_metrics,
          check_redis_holds_every_sample_and_the_outage,
          check_mysql_holds_every_sample_and_the_outage,
          check_otlp_gauges_hold_every_sample_and_the_outage,
          check_influxdb_points_are_typed_and_what_a_full_queue_drops_is_counted)


@pytest.mark.timeout(300)
def test_every_output_end_to_end_through_an_outage(tmp_path: Path, subtests: pytest.Subtests) -> None:
    """One run of the scenario; each output is its own subtest (a failure names it and the others still run)."""
    with scenario_in(tmp_path) as scenario:
        for check in CHECKS:
            with subtests.test(msg=check.__name__.removeprefix("check_").replace("_", " ")):
                check(scenario)
