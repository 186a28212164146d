"""Every dashboard query returns data from a real Prometheus scraping a jetson-mapper-shaped /metrics.

Skeleton for the lead: `metrics_endpoint` serves a recorded exposition (tests/fixtures/jetson-metrics-sample.prom);
swap it for the real mapper's HTTP server (emulated board) to check the dashboard against mapper/metrics.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from dashboard import dashboard_queries
from deploy_support import REPO_ROOT
from prometheus import Prometheus, running_prometheus

pytestmark = pytest.mark.slow

SAMPLE = REPO_ROOT / "tests" / "fixtures" / "jetson-metrics-sample.prom"
DEADLINE_SECONDS = 60.0


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
    with running_prometheus([metrics_endpoint]) as server:
        yield server.base_url


def instant_query(base_url: str, expr: str) -> list[Any] | None:
    """The result vector of an instant query, or None while Prometheus is not answering."""
    return Prometheus(base_url).query(expr)


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
