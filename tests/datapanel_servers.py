"""Real receivers for the data-panel tests, each on a free loopback port in a temp dir, stoppable and restartable.

redis-server and mariadbd (Debian), victoria-metrics (its /api/v2/write takes InfluxDB v2 line protocol),
rotel (a real OpenTelemetry collector from PyPI; with its debug exporter it prints every metric it receives,
which we read back from its output), and a plain HTTP server standing in for the user's own app.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import free_port, stop_process, wait_until

from mapper.demo.broker import accepts


class _Process:
    """A server binary restarted on the same port and data dir."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line."""
        raise NotImplementedError

    def ready(self) -> bool:
        """True once the server answers."""
        raise NotImplementedError

    def start(self) -> _Process:
        """Start and wait until it answers."""
        with (self.dir / "output.log").open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.dir)
        try:
            wait_until(lambda: self._alive() and self.ready(), f"{self.name} on port {self.port}", timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def _alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.output()[-2000:]}")
        return True

    def output(self) -> str:
        """Everything the server printed."""
        return (self.dir / "output.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop it (SIGTERM, then kill)."""
        if self.process is not None:
            stop_process(self.process)
        self.process = None


class RedisServer(_Process):
    """redis-server without persistence, with a password."""

    name = "redis"
    password = "redis-Secret-1"

    def command(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--dir", str(self.dir), "--requirepass", self.password]

    def client(self, db: int = 0) -> Any:
        """A redis-py client on database `db`."""
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, db=db, socket_timeout=5)

    def ready(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:
            return False


class MariaDb(_Process):
    """mariadbd on a fresh datadir, with database `jm` and user `jm` (password below)."""

    name = "mariadb"
    user, password, database = "jm", "maria-Secret-1", "jm"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.socket = str(self.dir / "sock")
        data, tmp = self.dir / "data", self.dir / "tmp"
        tmp.mkdir(exist_ok=True)  # its own: parallel servers in one /tmp collide on temporary table names
        done = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                               "--auth-root-authentication-method=normal", "--skip-test-db", f"--tmpdir={tmp}"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise AssertionError(f"mariadb-install-db failed: {done.stdout[-1500:]} {done.stderr[-1500:]}")
        self._created = False

    def command(self) -> list[str]:
        return ["mariadbd", "--no-defaults", f"--datadir={self.dir / 'data'}", f"--socket={self.socket}",
                f"--port={self.port}", "--bind-address=127.0.0.1", "--user=root", "--skip-name-resolve",
                f"--pid-file={self.dir / 'pid'}", "--innodb-buffer-pool-size=16M", "--skip-log-bin",
                f"--tmpdir={self.dir / 'tmp'}"]

    def ready(self) -> bool:
        if not os.path.exists(self.socket):
            return False
        if not self._created:
            import pymysql
            with pymysql.connect(unix_socket=self.socket, user="root") as root, root.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
                cursor.execute(f"CREATE USER IF NOT EXISTS '{self.user}'@'%' IDENTIFIED BY '{self.password}'")
                cursor.execute(f"GRANT ALL ON {self.database}.* TO '{self.user}'@'%'")
            self._created = True
        return True

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of one query, as the test user over TCP."""
        import pymysql
        with pymysql.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                             database=self.database) as conn, conn.cursor() as cursor:
            cursor.execute(sql, args)
            return list(cursor.fetchall())


class VictoriaMetrics(_Process):
    """victoria-metrics: InfluxDB line protocol in on /api/v2/write, points out through /api/v1/export."""

    name = "victoria"

    def command(self) -> list[str]:
        return ["victoria-metrics", f"-storageDataPath={self.dir / 'data'}",
                f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=100y", "-loggerLevel=ERROR"]

    @property
    def url(self) -> str:
        """The base URL (InfluxDB clients append /api/v2/write)."""
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def export(self) -> list[dict[str, Any]]:
        """Every series with its values and millisecond timestamps (the whole time range)."""
        urllib.request.urlopen(self.url + "/internal/force_flush", timeout=10).read()
        query = urllib.parse.urlencode({"match[]": '{__name__!=""}', "start": "0", "end": "4000000000"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=10) as answer:
            return [json.loads(line) for line in answer.read().decode().splitlines() if line.strip()]


@dataclass(frozen=True)
class OtlpPoint:
    """One data point rotel printed: its resource attributes, scope, gauge name, time and value."""

    resource: dict[str, str]
    scope: str
    name: str
    data_type: str
    time_unix_nano: int
    value: float | int


class Rotel(_Process):
    """The rotel OpenTelemetry collector: OTLP/HTTP in, every metric printed in detail (blackhole exporter)."""

    name = "rotel"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.grpc_port = free_port()

    @staticmethod
    def binary() -> str:
        """The collector binary shipped inside the rotel wheel."""
        import rotel
        return str(Path(rotel.__file__).parent / "rotel-agent")

    def command(self) -> list[str]:
        return [self.binary(), "start", "--otlp-http-endpoint", f"127.0.0.1:{self.port}",
                "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}", "--exporter", "blackhole",
                "--debug-log", "metrics", "--debug-log-verbosity", "detailed",
                "--pid-file", str(self.dir / "rotel.pid"), "--log-file", str(self.dir / "rotel.log")]

    @property
    def url(self) -> str:
        """The OTLP/HTTP metrics endpoint."""
        return f"http://127.0.0.1:{self.port}/v1/metrics"

    def ready(self) -> bool:
        return accepts(self.port)

    def points(self) -> list[OtlpPoint]:
        """Every number data point printed so far."""
        points: list[OtlpPoint] = []
        resource: dict[str, str] = {}
        scope = name = data_type = ""
        stamp: int | None = None
        section = ""
        for raw in re.sub(r"\x1b\[[0-9;]*m", "", self.output()).splitlines():
            line = raw.strip()
            if line.startswith("ResourceMetrics #"):
                resource, section = {}, "resource"
            elif line == "Resource attributes:":
                section = "resource"
            elif line.startswith("InstrumentationScope "):
                scope, section = line.split(" ", 1)[1].strip(), ""
            elif line == "Descriptor:":
                section = "descriptor"
            elif line.startswith("NumberDataPoints #"):
                section = "point"
            elif line.startswith("-> ") and section == "resource":
                key, _, value = line[3:].partition(": ")
                resource[key] = re.sub(r"^\w+\((.*)\)$", r"\1", value)
            elif line.startswith("-> Name: ") and section == "descriptor":
                name = line[len("-> Name: "):]
            elif line.startswith("-> DataType: ") and section == "descriptor":
                data_type = line[len("-> DataType: "):]
            elif line.startswith("Timestamp: ") and section == "point":
                stamp = int(line.split(": ", 1)[1])
            elif line.startswith("Value: ") and section == "point" and stamp is not None:
                text = line.split(": ", 1)[1]
                value: float | int = float(text) if re.search(r"[.eE]|nan|inf", text) else int(text)
                points.append(OtlpPoint(dict(resource), scope, name, data_type, stamp, value))
                stamp = None
        return points


@dataclass(frozen=True)
class Received:
    """One request the HTTP receiver got."""

    path: str
    content_type: str
    body: bytes
    client_port: int


class HttpReceiver:
    """A plain HTTP server that records every POST (the user's own app behind pushMethod.http)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.answers: list[int] = []  # statuses to answer next (then 204)
        self.delay = 0.0  # seconds to wait before answering
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    status = receiver.answers.pop(0) if receiver.answers else 204
                    if status == 204:
                        receiver.requests.append(Received(self.path, self.headers.get("Content-Type", ""), body,
                                                          self.client_address[1]))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> HttpReceiver:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def received(self) -> list[Received]:
        """A copy of what arrived so far."""
        with self._lock:
            return list(self.requests)

    def stop(self) -> None:
        """Stop serving."""
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


def have(binary: str) -> bool:
    """Whether a server binary is installed."""
    return shutil.which(binary) is not None or os.path.exists(f"/usr/sbin/{binary}")
