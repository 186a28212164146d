"""Every panel target of every dashboard returns data from a real Prometheus, run the way its viewer runs it.

The stack: two real mappers, each on its own emulated board and node (nx1: Xavier NX on JetPack 5, orin1: Orin Nano
on JetPack 6), each registered with its own fake EdgeCore that hands it one Device (jetson-xavier in namespace
default; jetson-orin-nano moved to namespace lab), two real node-exporters whose hostnames are nx1 and orin1, and a
real Prometheus scraping them as KubeSphere's does (the mapper with honor_labels, every target labelled with the
namespace its pods run in, kubesphere-monitoring-system).

How each viewer runs a target, from the upstream code:

- KubeSphere console (kubesphere/console release-3.4, src/stores/monitoring/custom/monitor.js and template.js;
  KubeSphere 4.x embeds the same pages as consolev3): the target's `expr` exactly as written -- the console keeps
  `templatings` but substitutes no variable, anywhere -- as a range query over the dashboard's time range with the
  target's `step`, sent to ks-apiserver's targets/query. Legends fill {{label}} from each series' labels;
  singlestat.js shows "Only queries that return single series" when a singlestat query gives more than one.
- ks-apiserver (kubesphere release-3.4, pkg/models/monitoring/expressions/prometheus.go): for a project dashboard
  every selector gets namespace="<project>" (prom-label-proxy's enforcer). For expressions without a namespace
  matcher of their own (the generator refuses those) that is the same as evaluating them on a Prometheus holding
  only that namespace's series, which the second Prometheus here is (metric_relabel_configs keep namespace=default).
- Grafana: $node and $device become the selected value (.* for All), $__rate_interval a duration.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from common import new_short_dir, wait_until
from dashboard import grafana_expr, kubesphere_dashboard, kubesphere_targets, legend_labels, load_dashboard, panels
from fake_edgecore import FakeEdgeCore
from mapper_process import DEVICE_MODEL, Emulator, Mapper
from node_exporter import running_node_exporter
from pods_fixture import FakeNode, first_uptime
from pods_stack import populate
from prometheus import Prometheus, running_prometheus

from mapper.dmi.manifests import load_manifests

pytestmark = pytest.mark.slow

DEADLINE_SECONDS = 60.0
PROJECT = "default"
MONITORING_NAMESPACE = "kubesphere-monitoring-system"
BOARDS = {  # node -> (emulator profile, Device file, Device namespace)
    "nx1": ("xavier-nx-jp5", "jetson-xavier.yaml", "default"),
    "orin1": ("orin-nano-jp6", "jetson-orin-nano.yaml", "lab"),
}


@dataclass(frozen=True)
class Stack:
    """The Prometheus views: the whole cluster, and the project `default` as ks-apiserver restricts it."""

    cluster: Prometheus
    project: Prometheus


def start_board(stack: ExitStack, node: str) -> Mapper:
    """Emulator, fake EdgeCore with the node's Device (1 s reports) and a mapper for one node; not yet healthy."""
    profile, device_file, namespace = BOARDS[node]
    workdir = new_short_dir()
    stack.callback(shutil.rmtree, workdir, True)
    models, devices = load_manifests([DEVICE_MODEL / "jetson-model.yaml", DEVICE_MODEL / device_file])
    models[0].namespace = devices[0].namespace = namespace
    for prop in devices[0].spec.properties:
        prop.reportCycle = 1000
    edgecore = FakeEdgeCore(os.path.join(workdir, "dmi.sock"))
    edgecore.set_devices([(models[0], devices[0])])
    edgecore.start()
    stack.callback(edgecore.stop)
    pods = FakeNode(Path(workdir) / "node", uptime=first_uptime(profile))  # GPU processes in pod containers
    populate(pods)
    emulator = Emulator(workdir, profile=str(pods.profile(Path(workdir) / "pods.json", base=profile)),
                        interval=1.0).start()
    stack.callback(emulator.stop)
    mapper = Mapper(workdir, {
        "grpc_server": {"socket_path": os.path.join(workdir, "jetson.sock")},
        "common": {"edgecore_sock": os.path.join(workdir, "dmi.sock")},
        "source": {"jtop_socket": emulator.socket, "interval": 1.0},
        "node_name": node,
        "pods": pods.settings(),
    }).start(wait=False)
    stack.callback(mapper.stop)
    return mapper


def scrape_configs(mappers: dict[str, str], exporters: dict[str, str], keep: str | None) -> list[dict[str, Any]]:
    """KubeSphere's scrapes: the mapper as its ServiceMonitor does (honorLabels, instance = node), node-exporter
    as job node-exporter; every target labelled with its pods' namespace. `keep`: only that namespace's series."""
    only = [{"source_labels": ["namespace"], "regex": keep, "action": "keep"}] if keep else []
    return [
        {"job_name": "jetson-mapper", "honor_labels": True, "metric_relabel_configs": only,
         "static_configs": [{"targets": [a], "labels": {"instance": n, "namespace": MONITORING_NAMESPACE}}
                            for n, a in mappers.items()]},
        {"job_name": "node-exporter", "metric_relabel_configs": only,
         "static_configs": [{"targets": list(exporters.values()), "labels": {"namespace": MONITORING_NAMESPACE}}]},
    ]  # fmt: skip


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Both boards, both node-exporters and both Prometheus views, for every dashboard."""
    with ExitStack() as stack:
        mappers = {node: start_board(stack, node) for node in BOARDS}
        exporters = {node: stack.enter_context(running_node_exporter(node)) for node in BOARDS}
        for mapper in mappers.values():
            wait_until(lambda m=mapper: m.alive_or_fail() and m.get("/healthz")[0] == 200, "the mapper's /healthz")
        addresses = {node: f"127.0.0.1:{m.port}" for node, m in mappers.items()}
        cluster = stack.enter_context(running_prometheus([], scrape_configs=scrape_configs(addresses, exporters, None)))
        project = stack.enter_context(running_prometheus([], scrape_configs=scrape_configs(addresses, exporters,
                                                                                           PROJECT)))
        yield Stack(cluster, project)


@dataclass(frozen=True)
class Check:
    """One panel target, as its viewer sends it, and what its answer must hold."""

    where: str
    expr: str
    legend: str
    single: bool = False
    nodes: frozenset[str] = frozenset()  # every one of these nodes has a series


def console_checks(name: str) -> list[Check]:
    """A KubeSphere dashboard's targets, sent verbatim as the console does."""
    checks = []
    for panel, target in kubesphere_targets(name):
        legend = target.get("legendFormat", "")
        per_node = name == "cluster" and legend_labels(legend) & {"node", "nodename"}
        checks.append(Check(f"{name}: {panel['title']}", target["expr"], legend, panel["type"] == "singlestat",
                            frozenset(BOARDS) if per_node else frozenset()))
    return checks


def grafana_checks(node: str, device: str) -> list[Check]:
    """The Grafana dashboard's targets with one node and its Device selected."""
    return [Check(f"grafana: {p['title']}", grafana_expr(t["expr"], node, device), t["legendFormat"],
                  nodes=frozenset([node]))
            for p in panels(load_dashboard()) for t in p["targets"]]


def range_query(server: Prometheus, expr: str, time_range: dict[str, str], step: str = "1m") -> list[Any]:
    """The console's query: from the dashboard's time range (now-1h .. now) at the target's step."""
    assert (time_range["from"], time_range["to"], step) == ("now-1h", "now", "1m"), "extend this to other ranges"
    end = float(int(time.time()))
    return server.query_range(expr, end - 3600, end, 60) or []


def unmet(check: Check, result: list[Any]) -> str | None:
    """Why an answer does not satisfy the check yet, or None."""
    if not result:
        return "no data"
    labels = [series["metric"] for series in result]
    missing = legend_labels(check.legend) - set.intersection(*(set(m) for m in labels))
    if missing:
        return f"legend labels {sorted(missing)} missing in {labels}"
    if check.single and len(result) != 1:
        return f"{len(result)} series for a singlestat"
    seen = {m.get("node") or m.get("nodename") for m in labels}
    if not check.nodes <= seen:
        return f"no series for {sorted(check.nodes - seen)}"
    return None


def test_every_panel_target_of_every_dashboard_returns_data(stack: Stack) -> None:
    views = {"cluster": stack.cluster, "project": stack.project, "grafana": stack.cluster}
    checks = {"cluster": console_checks("cluster"), "project": console_checks("project"),
              "grafana": grafana_checks("nx1", "jetson-xavier")}
    times = {name: kubesphere_dashboard(name)["spec"]["time"] for name in ("cluster", "project")}
    times["grafana"] = load_dashboard()["time"]
    assert sum(len(c) for c in checks.values()) >= 60
    pending = {(name, c): "not asked" for name, cs in checks.items() for c in cs}
    deadline = time.monotonic() + DEADLINE_SECONDS
    while pending and time.monotonic() < deadline:
        for name, check in list(pending):
            reason = unmet(check, range_query(views[name], check.expr, times[name]))
            if reason is None:
                del pending[(name, check)]
            else:
                pending[(name, check)] = reason
        if pending:
            time.sleep(0.5)
    assert not pending, "\n".join(f"{c.where}: {c.expr}: {why}" for (_, c), why in pending.items())

    # The project view is the namespace's only: the Device of namespace lab and the mapper's health never show.
    for check in checks["project"]:
        devices = {s["metric"].get("device") for s in range_query(stack.project, check.expr, times["project"])}
        assert "jetson-orin-nano" not in devices, check.where
    assert range_query(stack.project, "jetson_mapper_source_up", times["project"]) == []
    assert range_query(stack.cluster, "jetson_mapper_source_up", times["cluster"]) != []
    # Grafana's node filter filters.
    other = grafana_checks("other-node", ".*")[0]
    assert range_query(stack.cluster, other.expr, times["grafana"]) == []
