"""Every dashboard query returns data from a real Prometheus scraping a jetson-mapper-shaped /metrics.

Skeleton for the lead: `metrics_endpoint` serves a recorded exposition (tests/fixtures/jetson-metrics-sample.prom);
swap it for the real mapper's HTTP server (emulated board) to check the dashboard against mapper/metrics.py.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from dashboard import dashboard_queries
from deploy_support import REPO_ROOT, tool

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "tests" / "fixtures" / "jetson-metrics-sample.prom"
DEADLINE_SECONDS = 60.0


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def metrics_endpoint() -> Iterator[str]:
    """host:port of an HTTP server answering /metrics with the sample exposition."""
    body = SAMPLE.read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            """Answer every path with the sample exposition."""
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus(metrics_endpoint: str) -> Iterator[str]:
    """Base URL of a real Prometheus scraping `metrics_endpoint` every second."""
    workdir = Path(tempfile.mkdtemp(prefix="jm"))
    config = workdir / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: jetson-mapper\n    honor_labels: true\n"
        f"    static_configs: [{{targets: ['{metrics_endpoint}']}}]\n",
        encoding="utf-8",
    )
    port = free_port()
    process = subprocess.Popen(
        [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def instant_query(base_url: str, expr: str) -> list[Any] | None:
    """The result vector of an instant query, or None while Prometheus is not answering."""
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.load(response)
    except OSError:
        return None
    assert answer["status"] == "success", answer
    result: list[Any] = answer["data"]["result"]
    return result


def test_every_dashboard_query_returns_series(prometheus: str) -> None:
    pending = set(dashboard_queries(node="nx1", device="jetson-xavier"))
    deadline = time.monotonic() + DEADLINE_SECONDS
    while pending and time.monotonic() < deadline:
        pending = {q for q in pending if not instant_query(prometheus, q)}
        if pending:
            time.sleep(0.5)
    assert not pending, f"no data for: {sorted(pending)}"


def test_a_filter_for_another_node_returns_nothing(prometheus: str) -> None:
    query = dashboard_queries(node="nx1")[0]
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not instant_query(prometheus, query) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert instant_query(prometheus, query), "the sample never reached Prometheus"
    assert instant_query(prometheus, dashboard_queries(node="other-node")[0]) == []
