"""Every dashboard query returns data from a real Prometheus scraping the real mapper on the emulated board."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import pytest
from common import new_short_dir
from dashboard import dashboard_queries
from fake_edgecore import FakeEdgeCore
from mapper_process import DEVICE_MODEL, Emulator, Mapper
from prometheus import Prometheus, running_prometheus

from mapper.dmi.manifests import load_manifests

pytestmark = [pytest.mark.slow, pytest.mark.jtop]

DEADLINE_SECONDS = 60.0


@pytest.fixture
def metrics_endpoint() -> Iterator[str]:
    """host:port of the mapper (node nx1) fed by the emulator, registered with a fake EdgeCore that hands over
    the bundled Xavier NX Device: the deployed setup, so the DMI panels have data too."""
    workdir = new_short_dir()
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / "jetson-xavier.yaml"])
    edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
    edgecore.set_devices([(models[0], devices[0])])
    edgecore.start()
    emulator = Emulator(workdir, interval=1.0).start()
    mapper = Mapper(workdir, {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "common": {"edgecore_sock": os.path.join(workdir, "dmi.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": 1.0},
        "node_name": "nx1",
    }).start()
    try:
        yield f"127.0.0.1:{mapper.port}"
    finally:
        mapper.stop()
        emulator.stop()
        edgecore.stop()
        shutil.rmtree(workdir, ignore_errors=True)


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
