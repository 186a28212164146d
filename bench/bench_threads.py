"""Where the mapper's CPU goes: CPU per thread over one minute, in the benchmark's setting.

The emulated Xavier NX at 1 s sampling, the demo's Device pushing to a local mosquitto, one scrape a second on a
keep-alive connection (as bench_compare.py). Each thread's CPU is read from its schedstat (nanoseconds) before and
after --seconds; thread names come from `py-spy dump` (pip install py-spy; without it threads show their ids).
--checkout runs another checkout's mapper (before/after). Not part of the test run.
Usage: .venv/bin/python bench/bench_threads.py [--seconds 60] [--checkout DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench_compare import device_files_with_broker
from support import Scraper, emulator, mapper, mosquitto, thread_cpu


def thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from py-spy when it is installed."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        dump = subprocess.run([spy, "dump", "-p", str(pid)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(m[1]): m[2] for m in re.finditer(r'^Thread (\d+) \(\w+\): "([^"]*)"', dump, re.M)}


def profile(seconds: float, checkout: Path | None) -> tuple[list[tuple[float, str]], float]:
    """(ms of CPU per second, thread) for every thread that ran, and the total as % of one core."""
    workdir = Path(tempfile.mkdtemp(prefix="jmt", dir="/tmp"))
    try:
        with ExitStack() as stack:
            broker = stack.enter_context(mosquitto(workdir))
            jtop_socket = stack.enter_context(emulator(workdir))
            files = device_files_with_broker(workdir, broker, checkout)
            process, port = stack.enter_context(mapper(workdir, jtop_socket, files, checkout=checkout))
            scraper = Scraper(port)
            for _ in range(100):
                scraper.get()
            time.sleep(3)
            names = thread_names(process.pid)
            before, started = thread_cpu(process.pid), time.monotonic()
            for tick in range(int(seconds)):
                scraper.get()
                time.sleep(max(0.0, started + tick + 1 - time.monotonic()))
            after, wall = thread_cpu(process.pid), time.monotonic() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = sorted(((after[t] - before.get(t, 0.0)) * 1000 / wall, names.get(t, f"thread {t}")) for t in after)
    rows = [(ms, name) for ms, name in reversed(rows) if ms > 0.005]
    return rows, sum(ms for ms, _ in rows) / 10


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--checkout", type=Path, help="profile the mapper of this other checkout")
    args = parser.parse_args()
    rows, total = profile(args.seconds, args.checkout)
    print("| thread | CPU ms per second |\n| --- | ---: |")
    for ms, name in rows:
        print(f"| {name} | {ms:.2f} |")
    print(f"| total | {total * 10:.2f} ({total:.3f} % of one core) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
