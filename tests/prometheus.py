"""A real Prometheus (Debian `prometheus`) for tests: scrapes given targets every second from a throw-away tsdb."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from common import free_port, stop_process
from deploy_support import tool

READY_DEADLINE_S = 60.0




class Prometheus:
    """HTTP API client of one running Prometheus."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _get(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)

    def api(self, path: str, **params: str) -> Any:
        """The `data` of a successful /api/v1 answer, or None while Prometheus is not answering."""
        try:
            answer = self._get(f"/api/v1/{path}", params)
        except (OSError, urllib.error.URLError):
            return None
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[Any] | None:
        """The result vector of an instant query (`/api/v1/query`), None while not answering."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        return None if data is None else list(data["result"])

    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[Any] | None:
        """The result matrix of a range query (`/api/v1/query_range`), None while not answering."""
        data = self.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{step}")
        return None if data is None else list(data["result"])

    def wait_for(self, expr: str, deadline: float = READY_DEADLINE_S,
                 accept: Callable[[list[Any]], bool] = bool) -> list[Any]:
        """Poll an instant query until its result is accepted; fail naming the query."""
        end = time.monotonic() + deadline
        result: list[Any] | None = None
        while time.monotonic() < end:
            result = self.query(expr)
            if result is not None and accept(result):
                return result
            time.sleep(0.5)
        raise AssertionError(f"Prometheus query {expr!r} never gave an accepted result (last: {result!r})")


def write_config(path: Path, targets: Sequence[str], scrape_interval: str = "1s",
                 scrape_configs: Sequence[dict[str, Any]] | None = None) -> None:
    """A Prometheus config scraping `targets` (host:port) as job jetson-mapper, labels as exposed, or the given
    scrape_configs instead."""
    jobs = list(scrape_configs) if scrape_configs is not None else [
        {"job_name": "jetson-mapper", "honor_labels": True, "static_configs": [{"targets": list(targets)}]}
    ]
    config = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
              "scrape_configs": jobs}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


@contextmanager
def running_prometheus(targets: Sequence[str], scrape_interval: str = "1s",
                       scrape_configs: Sequence[dict[str, Any]] | None = None) -> Iterator[Prometheus]:
    """A real Prometheus scraping `targets` (or running `scrape_configs`), ready to answer queries; stopped and
    wiped afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="jm", dir="/tmp"))
    config = workdir / "prometheus.yml"
    write_config(config, targets, scrape_interval, scrape_configs)
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        _wait_ready(server, process, workdir / "prometheus.log")
        yield server
    finally:
        stop_process(process, timeout=20)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(server: Prometheus, process: subprocess.Popen[bytes], log: Path) -> None:
    """Block until /-/ready answers 200; fail with Prometheus' log if it exits or never gets ready."""
    end = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < end:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"prometheus not ready within {READY_DEADLINE_S}s:\n{log.read_text(errors='replace')}")
