"""The PromQL queries of the Grafana dashboard, with Grafana's variables filled in for Prometheus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD_PATH = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "jetson-dashboard.json"


def load_dashboard(path: Path = DASHBOARD_PATH) -> dict[str, Any]:
    """The dashboard JSON document."""
    dashboard: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def raw_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every panel target's expr as written in the dashboard (with $variables)."""
    return [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if t.get("expr")]


def dashboard_queries(node: str = ".*", device: str = ".*", rate_interval: str = "1m") -> list[str]:
    """Every panel query as plain PromQL: $node/$device become regexes, $__rate_interval a duration."""
    replacements = {"$__rate_interval": rate_interval, "$node": node, "$device": device}
    queries = []
    for expr in raw_queries(load_dashboard()):
        for variable, value in replacements.items():
            expr = expr.replace(variable, value)
        queries.append(expr)
    return queries
