"""Benchmark the HTTP port under load: a burst of concurrent scrapers, then hundreds of idle connections.

Runs the jtop.service emulator and one mapper in standalone mode (as bench_mapper.py does), then:

1. burst: --scrapers threads, each opening a new connection per scrape (`Connection: close`), released together
   by a barrier --rounds times; per-scrape latency (connect to last byte) and the kernel's TcpExt ListenOverflows
   and ListenDrops counters (/proc/net/netstat, machine-wide) before and after;
2. idle: --idle connections that send nothing; the mapper's thread count one second after opening them and
   --hold seconds later, and how many of them the mapper closed by then.

Not part of the test run. Usage: .venv/bin/python bench/bench_http_load.py [--source DIR] [--json out.json]
(--source: a checkout whose `mapper` package to run, e.g. an export of main, for before/after figures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_mapper import running_mapper
from support import percentile, status_kib

REQUEST = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


@dataclass
class LoadResult:
    """The figures of one run."""

    source: str
    scrapers: int
    rounds: int
    scrape_median_ms: float
    scrape_p99_ms: float
    scrape_max_ms: float
    failed_scrapes: int
    listen_overflows: int
    listen_drops: int
    idle_connections: int
    threads_before_idle: int
    threads_after_1s: int
    threads_after_hold: int
    idle_timed_out: int
    idle_answered_503: int
    hold_seconds: float


def netstat(*names: str) -> dict[str, int]:
    """TcpExt counters from /proc/net/netstat."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            table = dict(zip(header.split()[1:], values.split()[1:], strict=True))
            return {name: int(table[name]) for name in names}
    raise KeyError("TcpExt")


def scrape_once(port: int) -> float:
    """One scrape on a new connection; milliseconds from connect to the server closing it."""
    began = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(REQUEST)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    if not received.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(received[:80])
    return (time.perf_counter() - began) * 1000.0


def burst(port: int, scrapers: int, rounds: int) -> tuple[list[float], int]:
    """`rounds` bursts of `scrapers` simultaneous scrapes; latencies and failures."""
    barrier = threading.Barrier(scrapers)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def scraper() -> None:
        for _ in range(rounds):
            barrier.wait()
            try:
                took = scrape_once(port)
            except (OSError, RuntimeError):
                with lock:
                    failures[0] += 1
                continue
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=scraper) for _ in range(scrapers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures[0]


def fate(client: socket.socket) -> str:
    """What the server did with a silent connection so far: "open", "closed" (timed out) or "busy" (503)."""
    client.setblocking(False)
    try:
        data = client.recv(64)
    except BlockingIOError:
        return "open"
    except OSError:
        return "closed"
    return "busy" if data.startswith(b"HTTP/1.1 503") else "closed"


def idle_phase(pid: int, port: int, count: int, hold: float) -> tuple[int, int, int, int, int]:
    """Threads before, 1 s after opening `count` silent connections and `hold` s later; how many were closed
    by a timeout and how many answered 503 at once."""
    before = status_kib(pid, "Threads")
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]
    try:
        time.sleep(1.0)
        after_1s = status_kib(pid, "Threads")
        time.sleep(hold)
        after_hold = status_kib(pid, "Threads")
        fates = [fate(c) for c in clients]
        return before, after_1s, after_hold, fates.count("closed"), fates.count("busy")
    finally:
        for client in clients:
            client.close()


def measure(source: Path | None, scrapers: int, rounds: int, idle: int, hold: float) -> LoadResult:
    """One run against the mapper of `source` (None: this checkout)."""
    workdir = Path(tempfile.mkdtemp(prefix="jmh", dir="/tmp"))
    try:
        with running_mapper("xavier-nx-jp5", workdir, source) as (pid, port):
            counters = ("ListenOverflows", "ListenDrops")
            before = netstat(*counters)
            latencies, failures = burst(port, scrapers, rounds)
            after = netstat(*counters)
            threads = idle_phase(pid, port, idle, hold)
            return LoadResult(
                source=str(source or "this checkout"), scrapers=scrapers, rounds=rounds,
                scrape_median_ms=statistics.median(latencies), scrape_p99_ms=percentile(latencies, 0.99),
                scrape_max_ms=max(latencies), failed_scrapes=failures,
                listen_overflows=after["ListenOverflows"] - before["ListenOverflows"],
                listen_drops=after["ListenDrops"] - before["ListenDrops"],
                idle_connections=idle, threads_before_idle=threads[0], threads_after_1s=threads[1],
                threads_after_hold=threads[2], idle_timed_out=threads[3], idle_answered_503=threads[4],
                hold_seconds=hold,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(results: list[LoadResult]) -> str:
    """A Markdown table."""
    lines = ["| mapper | scrapers x rounds | median ms | p99 ms | max ms | failed | ListenOverflows | "
             "idle conns | threads before / +1 s / +hold | idle timed out | idle answered 503 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |"]
    for r in results:
        lines.append(f"| {r.source} | {r.scrapers} x {r.rounds} | {r.scrape_median_ms:.1f} | {r.scrape_p99_ms:.1f} | "
                     f"{r.scrape_max_ms:.1f} | {r.failed_scrapes} | {r.listen_overflows} | {r.idle_connections} | "
                     f"{r.threads_before_idle} / {r.threads_after_1s} / {r.threads_after_hold} "
                     f"(hold {r.hold_seconds:g} s) | {r.idle_timed_out} | {r.idle_answered_503} |")
    return "\n".join(lines)


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", action="append", type=Path,
                        help="checkout whose mapper to run (repeatable; default this checkout)")
    parser.add_argument("--scrapers", type=int, default=50, help="concurrent scrapers (default 50)")
    parser.add_argument("--rounds", type=int, default=20, help="bursts (default 20)")
    parser.add_argument("--idle", type=int, default=300, help="idle connections (default 300)")
    parser.add_argument("--hold", type=float, default=12.0, help="seconds to hold them (default 12)")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args()
    results = [measure(source, args.scrapers, args.rounds, args.idle, args.hold)
               for source in args.source or [None]]
    print(report(results))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
