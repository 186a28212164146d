"""Benchmark one mapper process: /metrics latency, CPU time per second of running, peak RSS.

Runs the jtop.service emulator (1 s samples) and `python -m mapper run` in standalone mode with the demo's
DeviceModel and Device, like `jetson-mapper demo`, then:

1. idle: lets it run for --idle seconds without scrapes and reads its CPU time from /proc/<pid>/stat;
2. scrapes: --scrapes sequential GET /metrics over one keep-alive HTTP connection, timing each one;
3. memory: VmHWM (peak RSS) and VmRSS from /proc/<pid>/status.

Not part of the test run. Usage: .venv/bin/python bench/bench_mapper.py [--profile P] [--json out.json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from support import cpu_seconds, free_port, percentile, status_kib, stop

from mapper.emulator.process import spawn_emulator

REPO = Path(__file__).resolve().parents[1]
DEVICE_FILES = (REPO / "device-model" / "jetson-model.yaml", REPO / "device-model" / "jetson-xavier.yaml")
AIMS = {"scrape_median_ms": 2.0, "fresh_median_ms": 2.0, "cpu_percent_of_one_core": 1.0,
        "scraped_cpu_percent": 1.0, "peak_rss_mib": 60.0}
FRESH_SPACING = 1.2  # seconds between "fresh" scrapes: every one sees a sample no scrape has seen


@dataclass
class Result:
    """The figures of one run."""

    profile: str
    scrapes: int
    scrape_median_ms: float
    scrape_p99_ms: float
    scrape_max_ms: float
    exposition_bytes: int
    series: int
    idle_seconds: float
    cpu_percent_of_one_core: float
    cpu_ms_per_scrape: float
    peak_rss_mib: float
    rss_mib: float
    threads: int
    fresh_scrapes: int = 0
    fresh_median_ms: float = 0.0
    fresh_p99_ms: float = 0.0
    scraped_cpu_percent: float = 0.0


def get(connection: http.client.HTTPConnection, path: str) -> bytes:
    """One GET on a keep-alive connection; the body."""
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return body


@contextmanager
def running_mapper(profile: str, workdir: Path, source: Path | None = None) -> Iterator[tuple[int, int]]:
    """Emulator plus mapper; yields (mapper pid, HTTP port) once /metrics shows a board sample.

    `source` runs the mapper package of another checkout (for before/after figures), default this one.
    """
    with ExitStack() as stack:
        jtop_socket = str(workdir / "jtop.sock")
        emulator = spawn_emulator(profile, jtop_socket, interval=1.0)
        stack.callback(stop, emulator)
        port = free_port()
        config = {
            "grpc_server": {"socket_path": str(workdir / "jetson.sock")},
            "common": {"http_port": port},
            "http": {"address": "127.0.0.1"},
            "source": {"jtop_socket": jtop_socket, "interval": 1.0},
            "standalone": {"files": [str(f) for f in DEVICE_FILES]},
            "node_name": "bench-node",
            "log_level": "WARNING",
        }
        (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        with (workdir / "mapper.log").open("wb") as log:
            mapper = subprocess.Popen([sys.executable, "-m", "mapper", "run", "--config", str(workdir / "config.yaml")],
                                      stdout=log, stderr=subprocess.STDOUT, cwd=source)
        stack.callback(stop, mapper)
        _wait_for_sample(mapper, port, workdir / "mapper.log")
        yield mapper.pid, port


def _wait_for_sample(mapper: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if mapper.poll() is not None:
            raise RuntimeError(f"mapper exited with {mapper.returncode}:\n{log.read_text(errors='replace')}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            if b"\njetson_uptime_seconds{" in get(connection, "/metrics"):
                connection.close()
                return
        except (OSError, RuntimeError):
            pass
        time.sleep(0.2)
    raise RuntimeError("mapper exposed no sample within 60 s")


def fresh_phase(port: int, pid: int, count: int) -> tuple[list[float], float]:
    """Scrapes spaced like a real Prometheus (each sees a new sample); latencies and CPU % meanwhile."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
    for _ in range(count):
        time.sleep(FRESH_SPACING)
        began = time.perf_counter()
        get(connection, "/metrics")
        latencies.append((time.perf_counter() - began) * 1000.0)
    cpu = cpu_seconds(pid) - cpu_before
    wall = time.monotonic() - wall_before
    connection.close()
    return latencies, 100.0 * cpu / wall


def measure(profile: str, scrapes: int, warmup: float, idle: float, fresh: int = 40) -> Result:
    """One full run."""
    workdir = Path(tempfile.mkdtemp(prefix="jmb", dir="/tmp"))
    try:
        with running_mapper(profile, workdir) as (pid, port):
            time.sleep(warmup)
            cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
            time.sleep(idle)
            idle_cpu = cpu_seconds(pid) - cpu_before
            idle_wall = time.monotonic() - wall_before

            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = get(connection, "/metrics")
            latencies: list[float] = []
            cpu_before, wall_before = cpu_seconds(pid), time.monotonic()
            for _ in range(scrapes):
                began = time.perf_counter()
                body = get(connection, "/metrics")
                latencies.append((time.perf_counter() - began) * 1000.0)
            scrape_cpu = cpu_seconds(pid) - cpu_before
            scrape_wall = time.monotonic() - wall_before
            connection.close()
            # the scrape phase also holds the idle work (sampling, pacing) of its own duration: take it out
            per_scrape = max(0.0, scrape_cpu - idle_cpu / idle_wall * scrape_wall) / scrapes
            series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
            fresh_latencies, scraped_cpu = fresh_phase(port, pid, fresh) if fresh else ([0.0], 0.0)
            return Result(
                profile=profile, scrapes=scrapes,
                scrape_median_ms=statistics.median(latencies), scrape_p99_ms=percentile(latencies, 0.99),
                scrape_max_ms=max(latencies), exposition_bytes=len(body), series=series,
                idle_seconds=idle_wall, cpu_percent_of_one_core=100.0 * idle_cpu / idle_wall,
                cpu_ms_per_scrape=per_scrape * 1000.0,
                peak_rss_mib=status_kib(pid, "VmHWM") / 1024.0, rss_mib=status_kib(pid, "VmRSS") / 1024.0,
                threads=status_kib(pid, "Threads"), fresh_scrapes=fresh,
                fresh_median_ms=statistics.median(fresh_latencies), fresh_p99_ms=percentile(fresh_latencies, 0.99),
                scraped_cpu_percent=scraped_cpu,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    from importlib.metadata import version

    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "kernel": platform.release(), "jetson_stats": version("jetson-stats"),
            "prometheus_client": version("prometheus-client")}


def report(results: list[Result], host: dict[str, Any]) -> str:
    """A Markdown table of the results against the aims."""
    lines = [f"machine: {host['cpus']} x {host['cpu_model']}, Python {host['python']}, "
             f"jetson-stats {host['jetson_stats']}, prometheus-client {host['prometheus_client']}", "",
             "| profile | series | bytes | scrape median ms | p99 ms | max ms | CPU % of a core (idle) "
             "| CPU ms per scrape | peak RSS MiB | RSS MiB | threads | fresh-sample scrape median ms | p99 ms "
             "| CPU % while scraped every 1.2 s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r.profile} | {r.series} | {r.exposition_bytes} | {r.scrape_median_ms:.2f} | "
                     f"{r.scrape_p99_ms:.2f} | {r.scrape_max_ms:.2f} | {r.cpu_percent_of_one_core:.2f} | "
                     f"{r.cpu_ms_per_scrape:.2f} | {r.peak_rss_mib:.1f} | {r.rss_mib:.1f} | {r.threads} | "
                     f"{r.fresh_median_ms:.2f} | {r.fresh_p99_ms:.2f} | {r.scraped_cpu_percent:.2f} |")
    lines.append("")
    lines.append("aims: " + ", ".join(f"{key} < {limit}" for key, limit in AIMS.items()))
    for r in results:
        missed = [key for key, limit in AIMS.items() if getattr(r, key) >= limit]
        lines.append(f"{r.profile}: " + ("all aims met" if not missed else "MISSED " + ", ".join(missed)))
    return "\n".join(lines)


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", action="append", help="emulator profile (repeatable; default xavier-nx-jp5)")
    parser.add_argument("--scrapes", type=int, default=2000, help="timed scrapes (default 2000)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring (default 10)")
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle CPU measurement (default 60)")
    parser.add_argument("--fresh", type=int, default=40,
                        help=f"scrapes {FRESH_SPACING} s apart, each on a new sample (default 40)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args()
    host = machine()
    results = [measure(p, args.scrapes, args.warmup, args.idle, args.fresh)
               for p in args.profile or ["xavier-nx-jp5"]]
    print(report(results, host))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": host, "results": [asdict(r) for r in results]}, indent=2),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
