"""jetson-mapper against the seed write-up's hand-made exporter, side by side in one run.

Each on its own emulated board (1 s sampling); the mapper in standalone mode with the demo's Device, its MQTT pushes
going to a real local mosquitto. Both get --burst back-to-back scrapes (warm-up, latency), then one scrape a second
each, interleaved, on a keep-alive connection for --seconds; CPU is read from /proc (each thread's schedstat, in
nanoseconds) over that window for both processes at once, so machine noise hits both alike. Reported as absolute
figures and as ratios mapper / seed, per run and the median over --runs.

Needs ../shared/anchors/seed_collector.py (or $JETSON_MAPPER_SHARED/anchors); without it only the mapper is measured.
Not part of the test run. Usage: .venv/bin/python bench/bench_compare.py [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

from support import (
    DEVICE_FILES,
    SEED_COLLECTOR,
    CpuMeter,
    Scraper,
    emulator,
    mapper,
    mosquitto,
    percentile,
    seed_exporter,
    status_kib,
)

METRICS = ("cpu_percent", "peak_rss_mib", "burst_median_ms", "burst_p99_ms", "paced_median_ms", "paced_p99_ms")


@dataclass
class Figures:
    """One exporter in one run."""

    who: str
    series: int
    cpu_percent: float
    peak_rss_mib: float
    burst_median_ms: float
    burst_p99_ms: float
    paced_median_ms: float
    paced_p99_ms: float


def device_files_with_broker(workdir: Path, port: int, checkout: Path | None = None) -> list[Path]:
    """The demo's model and Device (of `checkout` when given), the Device pushing to the bench's broker."""
    model, device = (checkout / "device-model" / f.name for f in DEVICE_FILES) if checkout else DEVICE_FILES
    copy = workdir / device.name
    copy.write_text(device.read_text(encoding="utf-8").replace("tcp://127.0.0.1:1883", f"tcp://127.0.0.1:{port}"),
                    encoding="utf-8")
    return [model, copy]


def timed(scraper: Scraper) -> tuple[float, bytes]:
    """Milliseconds of one scrape, and its body."""
    began = time.perf_counter()
    body = scraper.get()
    return (time.perf_counter() - began) * 1000.0, body


def one_run(burst: int, seconds: int, with_seed: bool, baseline: Path | None = None) -> list[Figures]:
    """Start everything, measure, stop everything."""
    workdir = Path(tempfile.mkdtemp(prefix="jmc", dir="/tmp"))
    try:
        with ExitStack() as stack:
            targets: dict[str, tuple[int, Scraper]] = {}
            broker = stack.enter_context(mosquitto(workdir))
            mapper_dir = workdir / "mapper"
            mapper_dir.mkdir()
            socket_a = stack.enter_context(emulator(mapper_dir))
            process, port = stack.enter_context(mapper(mapper_dir, socket_a, device_files_with_broker(workdir, broker)))
            targets["jetson-mapper"] = (process.pid, Scraper(port))
            if baseline is not None:
                before_dir = workdir / "before"
                before_dir.mkdir()
                socket_c = stack.enter_context(emulator(before_dir))
                files = device_files_with_broker(before_dir, broker, baseline)
                process, port = stack.enter_context(mapper(before_dir, socket_c, files, checkout=baseline))
                targets["mapper before"] = (process.pid, Scraper(port))
            if with_seed:
                seed_dir = workdir / "seed"
                seed_dir.mkdir()
                socket_b = stack.enter_context(emulator(seed_dir))
                process, port = stack.enter_context(seed_exporter(seed_dir, socket_b))
                targets["seed exporter"] = (process.pid, Scraper(port))
            bursts: dict[str, list[float]] = {who: [] for who in targets}
            series: dict[str, int] = {}
            for who, (_, scraper) in targets.items():
                for _ in range(burst):
                    elapsed, body = timed(scraper)
                    bursts[who].append(elapsed)
                series[who] = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
            paced: dict[str, list[float]] = {who: [] for who in targets}
            meters = {who: CpuMeter(pid) for who, (pid, _) in targets.items()}
            started = time.monotonic()
            order = list(targets.items())
            for tick in range(seconds):
                # each exporter takes its turn first: the first scrape after the client's own sleep is the slowest
                turn = tick % len(order)
                for who, (_, scraper) in order[turn:] + order[:turn]:
                    paced[who].append(timed(scraper)[0])
                time.sleep(max(0.0, started + tick + 1 - time.monotonic()))
            wall = time.monotonic() - started
            return [Figures(
                who=who, series=series[who],
                cpu_percent=100.0 * meters[who].seconds() / wall,
                peak_rss_mib=status_kib(pid, "VmHWM") / 1024.0,
                burst_median_ms=statistics.median(bursts[who]), burst_p99_ms=percentile(bursts[who], 0.99),
                paced_median_ms=statistics.median(paced[who]), paced_p99_ms=percentile(paced[who], 0.99),
            ) for who, (pid, _) in targets.items()]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ratios(run: list[Figures], against: str = "seed exporter") -> dict[str, float]:
    """jetson-mapper / `against` for every figure of one run."""
    by_name = {f.who: f for f in run}
    ours, theirs = by_name["jetson-mapper"], by_name[against]
    return {metric: getattr(ours, metric) / getattr(theirs, metric) for metric in METRICS}


def report(runs: list[list[Figures]]) -> str:
    """Markdown: absolute figures per run, ratios per run, and the median ratios."""
    lines = ["| run | exporter | series | CPU % of one core | peak RSS MiB | burst median ms | burst p99 ms "
             "| paced median ms | paced p99 ms |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for number, run in enumerate(runs, 1):
        lines.extend(f"| {number} | {f.who} | {f.series} | {f.cpu_percent:.2f} | {f.peak_rss_mib:.1f} | "
                     f"{f.burst_median_ms:.2f} | {f.burst_p99_ms:.2f} | {f.paced_median_ms:.2f} | "
                     f"{f.paced_p99_ms:.2f} |" for f in run)
    for against in ("seed exporter", "mapper before"):
        if not all(against in {f.who for f in run} for run in runs):
            continue
        lines += ["", f"jetson-mapper / {against}:", "",
                  "| run | " + " | ".join(f"{m} ratio" for m in METRICS) + " |", "| --- |" + " ---: |" * len(METRICS)]
        per_run = [ratios(run, against) for run in runs]
        lines.extend(f"| {n} | " + " | ".join(f"{r[m]:.2f}" for m in METRICS) + " |" for n, r in enumerate(per_run, 1))
        lines.append("| median | " + " | ".join(f"{statistics.median(r[m] for r in per_run):.2f}" for m in METRICS)
                     + " |")
    return "\n".join(lines)


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="independent runs (default 3)")
    parser.add_argument("--burst", type=int, default=400, help="back-to-back scrapes first (default 400)")
    parser.add_argument("--seconds", type=int, default=40, help="seconds of one scrape a second (default 40)")
    parser.add_argument("--baseline", type=Path,
                        help="also run the mapper of this other checkout (e.g. `git worktree add /tmp/before <rev>`)")
    parser.add_argument("--no-seed", action="store_true", help="leave the seed's exporter out (with --baseline)")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    args = parser.parse_args()
    with_seed = SEED_COLLECTOR.is_file() and not args.no_seed
    if not with_seed and not args.no_seed:
        print(f"note: {SEED_COLLECTOR} is absent (set JETSON_MAPPER_SHARED): measuring the mapper alone",
              file=sys.stderr)
    runs = [one_run(args.burst, args.seconds, with_seed, args.baseline) for _ in range(args.runs)]
    print(report(runs))
    if args.json:
        Path(args.json).write_text(json.dumps([[asdict(f) for f in run] for run in runs], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
