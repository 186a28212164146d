"""The generated dashboards (Grafana JSON, KubeSphere YAML) and their queries as each viewer runs them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from mapper.dashboards.outputs import GRAFANA_FILE, KUBESPHERE_FILES

REPO = Path(__file__).resolve().parents[1]
DASHBOARD_PATH = REPO / GRAFANA_FILE
KUBESPHERE_PATHS = {name: REPO / path for name, path in KUBESPHERE_FILES.items()}
KUBESPHERE_DOC = REPO / "docs" / "kubesphere.md"
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def load_dashboard(path: Path = DASHBOARD_PATH) -> dict[str, Any]:
    """The Grafana dashboard JSON document."""
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every Grafana panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def raw_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every Grafana panel target's expr as written in the dashboard (with $variables)."""
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def grafana_expr(expr: str, node: str = ".*", device: str = ".*", rate_interval: str = "1m") -> str:
    """An expr as Grafana sends it: $node/$device become the selected value (All: .*), $__rate_interval a duration."""
    for variable, value in {"$__rate_interval": rate_interval, "$node": node, "$device": device}.items():
        expr = expr.replace(variable, value)
    return expr


def dashboard_queries(node: str = ".*", device: str = ".*", rate_interval: str = "1m") -> list[str]:
    """Every Grafana panel query as plain PromQL."""
    return [grafana_expr(q, node, device, rate_interval) for q in raw_queries(load_dashboard())]


def kubesphere_dashboard(name: str) -> dict[str, Any]:
    """The ClusterDashboard ("cluster") or project Dashboard ("project") as generated."""
    document: dict[str, Any] = yaml.safe_load(KUBESPHERE_PATHS[name].read_text(encoding="utf-8"))
    return document


def kubesphere_targets(name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) of every panel target of a KubeSphere dashboard."""
    return [(p, t) for p in kubesphere_dashboard(name)["spec"]["panels"] for t in p.get("targets", [])]


def legend_labels(legend: str) -> set[str]:
    """The labels a legend format fills in."""
    return set(LEGEND_LABEL.findall(legend or ""))


def metric_names(expr: str) -> set[str]:
    """The jetson_* and node_* metric names an expression reads (quoted strings skipped)."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\b(?:jetson|node)_[A-Za-z_]+\b", unquoted))


def node_exporter_metrics() -> set[str]:
    """The node-exporter metric names docs/kubesphere.md lists for the dashboards."""
    text = KUBESPHERE_DOC.read_text(encoding="utf-8")
    start = re.search(r"^## (?:\d+\. )?See the Jetson in the console$", text, re.MULTILINE)
    assert start, "docs/kubesphere.md has no section 'See the Jetson in the console'"
    section = text[start.end():].split("\n## ", 1)[0]
    return set(re.findall(r"`(node_[A-Za-z_]+)`", section))
