"""The KubeSphere Custom Monitoring dashboards (monitoring.kubesphere.io/v1alpha2) from the catalogue.

What the console does with them (kubesphere/console, src/stores/monitoring/custom/, the same code that KubeSphere
4.x embeds for its WhizardTelemetry custom monitoring): it sends each target's `expr` unchanged, with the
dashboard's time range and the target's `step`, to ks-apiserver's `targets/query`, which for a project dashboard
sets `namespace="<project>"` on every selector. No templating variable is substituted, so expressions carry
none; singlestat panels are drawn at the top and refuse more than one series; units are the console's
unitTransformMap formats.
"""

from __future__ import annotations

import re
from typing import Any

from mapper.dashboards.catalogue import UNITS, VARIABLE_MATCHER, Catalogue, Panel

API_VERSION = "monitoring.kubesphere.io/v1alpha2"
KINDS = {"cluster": "ClusterDashboard", "project": "Dashboard"}
RATE_WINDOW = "5m"  # KubeSphere scrapes node-exporter every 1m: a window of several scrapes
STEP = "1m"
# The console's default series colours (its MONITOR_GRAPH_COLORS[0]); graphs without colours get no legend colour.
COLORS = ["#60acfc", "#23c2db", "#64d5b2", "#d5ec5a", "#ffb64e", "#fb816d", "#d15c7f"]

_SELECTOR = re.compile(r'\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}')
_MATCHER = re.compile(r'[A-Za-z_]\w*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"')


class KubeSphereExprError(ValueError):
    """An expression the console could not run as written."""


def for_kubesphere(expr: str) -> str:
    """The catalogue's Grafana expression as KubeSphere runs it: no variable matchers, a fixed rate window."""
    result = _SELECTOR.sub(_without_variables, expr.replace("$__rate_interval", RATE_WINDOW))
    if "$" in result:
        raise KubeSphereExprError(f"{expr!r} keeps a variable for KubeSphere: {result!r}")
    return result


def _without_variables(selector: re.Match[str]) -> str:
    """One {...} matcher list without its variable matchers; empty braces go."""
    inside = selector.group(1)
    matchers = _MATCHER.findall(inside)
    if _MATCHER.sub("", inside).replace(",", "").strip():
        raise KubeSphereExprError(f"cannot read the matchers of {selector.group(0)!r}")
    kept = [m for m in matchers if not VARIABLE_MATCHER.fullmatch(m)]
    return "{" + ", ".join(kept) + "}" if kept else ""


def kubesphere_dashboard(catalogue: Catalogue, dashboard: str) -> dict[str, Any]:
    """The ClusterDashboard ("cluster") or the project Dashboard ("project"); singlestats first, as drawn."""
    meta = catalogue.dashboards[dashboard]
    panels = catalogue.panels_in(dashboard)
    ordered = [p for p in panels if p.single] + [p for p in panels if not p.single]
    return {
        "apiVersion": API_VERSION,
        "kind": KINDS[dashboard],
        "metadata": {"name": meta["name"], "labels": {"app.kubernetes.io/name": "jetson-mapper"}},
        "spec": {
            "title": meta["title"],
            "description": " ".join(str(meta.get("description", "")).split()),
            "time": dict(meta["time"]),
            "panels": [_panel(p, dashboard) for p in ordered],
        },
    }


def _panel(panel: Panel, dashboard: str) -> dict[str, Any]:
    """One singlestat or graph panel."""
    unit = UNITS[panel.unit]
    targets = []
    for ref, target in enumerate(panel.targets_in(dashboard), start=1):
        expr = for_kubesphere(target.expr)
        if unit.divisor != 1:
            expr = f"({expr}) / {unit.divisor}"
        entry: dict[str, Any] = {"expr": expr, "refId": ref, "step": STEP}
        if target.legend:
            entry["legendFormat"] = target.legend
        targets.append(entry)
    common: dict[str, Any] = {"id": panel.id, "title": panel.title + unit.suffix}
    if panel.description:
        common["description"] = panel.description
    if panel.single:
        return {**common, "type": "singlestat", "format": unit.kubesphere, "decimals": unit.decimals,
                "valueName": "last", "targets": targets}
    return {**common, "type": "graph", "lines": True, "colors": list(COLORS),
            "yaxes": [{"format": unit.kubesphere, "decimals": unit.decimals}], "targets": targets}
