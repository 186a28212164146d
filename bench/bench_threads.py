"""Where the mapper's CPU goes: CPU per thread over one minute, in the benchmark's setting.

The emulated Xavier NX at 1 s sampling, the demo's Device pushing to a local mosquitto, one scrape a second on a
keep-alive connection (as bench_compare.py). Each thread's CPU is read from its schedstat (nanoseconds) before and
after --seconds; thread names come from `py-spy dump` (pip install py-spy; without it threads show their ids).
--functions then samples another --seconds of the same load with `py-spy record` (non-blocking, 1 kHz) and charges
each sample to the innermost frame of the mapper's own code on its stack (library code it calls counts for it;
stacks without a mapper frame go to the library's top package), shown as a share of the samples and as ms of CPU
per second at the schedstat total. --checkout runs another checkout's mapper (before/after). Not part of the test run.
Usage: .venv/bin/python bench/bench_threads.py [--seconds 60] [--functions 15] [--checkout DIR]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

from bench_compare import device_files_with_broker
from support import Scraper, emulator, mapper, mosquitto, thread_cpu

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def py_spy() -> str:
    """The py-spy executable: on PATH or beside this Python."""
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def charge(stack: str) -> str:
    """Who a sampled stack counts for: the innermost mapper frame, else the innermost frame's top package."""
    frames = [m for m in (FRAME.match(f) for f in stack.split(";")) if m]
    for frame in reversed(frames):
        if frame["file"].startswith("mapper/"):
            module = frame["file"].removesuffix(".py").replace("/", ".")
            return f"{module}:{frame['function']}"
    packages = [f["file"].split("/")[0].removesuffix(".py") for f in frames]
    outer = next((p for p in packages if p not in ("threading", "<frozen importlib._bootstrap>")), None)
    if outer is None:
        return "(unknown)"
    return f"{outer} (no mapper frame)" if outer == packages[-1] else f"{outer} -> {packages[-1]} (no mapper frame)"


def functions(pid: int, seconds: float, scraper: Scraper) -> Counter[str]:
    """Samples per charged function over `seconds` of one scrape a second, from py-spy record."""
    out = Path(tempfile.mkstemp(prefix="jmspy", suffix=".txt", dir="/tmp")[1])
    try:
        recorder = subprocess.Popen(
            [
                py_spy(),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "1000",
                "--nonblocking",
                "--function",
                "--format",
                "raw",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.monotonic()
        for tick in range(int(seconds)):
            scraper.get()
            time.sleep(max(0.0, started + tick + 1 - time.monotonic()))
        recorder.wait(timeout=seconds + 30)
        counts: Counter[str] = Counter()
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            counts[charge(stack)] += int(count)
        return counts
    finally:
        out.unlink(missing_ok=True)


def thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from py-spy when it is installed."""
    spy = py_spy()
    try:
        dump = subprocess.run([spy, "dump", "-p", str(pid)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(m[1]): m[2] for m in re.finditer(r'^Thread (\d+) \(\w+\): "([^"]*)"', dump, re.M)}


def profile(
    seconds: float, checkout: Path | None, by_function: bool
) -> tuple[list[tuple[float, str]], float, Counter[str]]:
    """(ms of CPU per second, thread) for every thread that ran, the total as % of one core, samples per function."""
    counts: Counter[str] = Counter()
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
            if by_function:
                counts = functions(process.pid, seconds, scraper)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = sorted(((after[t] - before.get(t, 0.0)) * 1000 / wall, names.get(t, f"thread {t}")) for t in after)
    rows = [(ms, name) for ms, name in reversed(rows) if ms > 0.005]
    return rows, sum(ms for ms, _ in rows) / 10, counts


def main() -> int:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--functions", type=int, default=0, metavar="N", help="then the N costliest functions")
    parser.add_argument("--checkout", type=Path, help="profile the mapper of this other checkout")
    args = parser.parse_args()
    rows, total, counts = profile(args.seconds, args.checkout, args.functions > 0)
    print("| thread | CPU ms per second |\n| --- | ---: |")
    for ms, name in rows:
        print(f"| {name} | {ms:.2f} |")
    print(f"| total | {total * 10:.2f} ({total:.3f} % of one core) |")
    samples = sum(counts.values())
    if samples:
        print(f"\n{samples} samples; ms per second at the total above\n")
        print("| charged to | share of samples | CPU ms per second |\n| --- | ---: | ---: |")
        for name, count in counts.most_common(args.functions):
            print(f"| `{name}` | {100 * count / samples:.1f} % | {total * 10 * count / samples:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
