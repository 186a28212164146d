"""Process plumbing the benchmarks share: start emulators, mappers, the seed exporter and brokers; read /proc."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from mapper.emulator.process import spawn_emulator

REPO = Path(__file__).resolve().parents[1]
DEVICE_FILES = (REPO / "device-model" / "jetson-model.yaml", REPO / "device-model" / "jetson-xavier.yaml")
SHARED = Path(os.environ.get("JETSON_MAPPER_SHARED", REPO.parent / "shared"))
SEED_COLLECTOR = SHARED / "anchors" / "seed_collector.py"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MOSQUITTO = "/usr/sbin/mosquitto"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far, in clock ticks (10 ms): includes threads that ended."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15 of stat)


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread, to the nanosecond (schedstat)."""
    found: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError):
            continue
    return found


class CpuMeter:
    """CPU a process spends between start and stop: nanosecond-exact while its threads live through the window
    (both exporters keep theirs), clock ticks when a thread ended meanwhile."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._threads = thread_cpu(pid)
        self._ticks = cpu_seconds(pid)

    def seconds(self) -> float:
        """CPU seconds since the meter started."""
        threads, ticks = thread_cpu(self.pid), cpu_seconds(self.pid)
        if set(self._threads) - set(threads):
            return ticks - self._ticks
        return sum(threads.values()) - sum(self._threads.values())


def status_kib(pid: int, key: str) -> int:
    """A kB figure (VmHWM, VmRSS) or count (Threads) from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise KeyError(key)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


class Scraper:
    """GET /metrics on a keep-alive connection, reconnecting when the server closes it (HTTP/1.0 servers)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._connection: http.client.HTTPConnection | None = None

    def get(self, path: str = "/metrics") -> bytes:
        """One GET; the body."""
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self._connection.request("GET", path)
                response = self._connection.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status}")
            return body
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_metrics(process: subprocess.Popen[bytes], port: int, marker: bytes, log: Path) -> None:
    """Until /metrics shows `marker` (a board sample arrived)."""
    deadline = time.monotonic() + 60
    scraper = Scraper(port)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        try:
            if marker in scraper.get():
                scraper.close()
                return
        except (OSError, RuntimeError, http.client.HTTPException):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no {marker!r} on :{port}/metrics within 60 s:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def emulator(workdir: Path, profile: str = "xavier-nx-jp5", interval: float = 1.0) -> Iterator[str]:
    """A jtop.service emulator; yields its socket path."""
    jtop_socket = str(workdir / f"jtop-{profile}.sock")
    process = spawn_emulator(profile, jtop_socket, interval=interval)
    try:
        yield jtop_socket
    finally:
        stop(process)


@contextmanager
def mosquitto(workdir: Path) -> Iterator[int]:
    """A mosquitto broker on a free loopback port; yields the port."""
    port = free_port()
    config = workdir / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n", encoding="utf-8")
    process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        stop(process)


@contextmanager
def mapper(workdir: Path, jtop_socket: str, device_files: list[Path] | None = None,
           extra: dict[str, Any] | None = None,
           checkout: Path | None = None) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`python -m mapper run` in standalone mode; yields (process, HTTP port) once /metrics shows a sample.
    `checkout` runs the mapper package of another checkout of the repository (before/after figures)."""
    port = free_port()
    config: dict[str, Any] = {
        "grpc_server": {"socket_path": str(workdir / "jetson.sock")},
        "common": {"http_port": port},
        "http": {"address": "127.0.0.1"},
        "source": {"jtop_socket": jtop_socket, "interval": 1.0},
        "standalone": {"files": [str(f) for f in (device_files or DEVICE_FILES)]},
        "node_name": "bench-node",
        "log_level": "WARNING",
        **(extra or {}),
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    log = workdir / "mapper.log"
    with ExitStack() as stack, log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "mapper", "run", "--config", str(workdir / "config.yaml")],
                                   stdout=out, stderr=subprocess.STDOUT, cwd=checkout)
        stack.callback(stop, process)
        wait_for_metrics(process, port, b"\njetson_uptime_seconds{", log)
        yield process, port


@contextmanager
def seed_exporter(workdir: Path, jtop_socket: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """The seed write-up's exporter (../shared/anchors) on its own port; yields (process, port)."""
    port = free_port()
    log = workdir / "seed.log"
    environment = {**os.environ, "JTOP_SOCK": jtop_socket, "PORT": str(port)}
    with ExitStack() as stack, log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(SEED_COLLECTOR)], stdout=out, stderr=subprocess.STDOUT,
                                   env=environment)
        stack.callback(stop, process)
        wait_for_metrics(process, port, b"\ngpu_usage_gpu{", log)
        yield process, port
