"""The Grafana dashboard (JSON model, schema 39) from the catalogue: panels flow left to right on 24 columns."""

from __future__ import annotations

from typing import Any

from mapper.dashboards.catalogue import UNITS, Catalogue, Panel

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24
_NAME_STAT_OPTIONS = {
    "textMode": "name",
    "colorMode": "none",
    "graphMode": "none",
    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
}
_GRAPH_OPTIONS = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
_RIGHT_AXIS = {"id": "custom.axisPlacement", "value": "right"}  # a query with its own unit gets its own axis
_PANEL_TYPES = {"stat": "stat", "graph": "timeseries", "timeline": "state-timeline"}


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    """A multi-value query variable with All (= .*) selected."""
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query, "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1,
    }  # fmt: skip


TEMPLATING = [
    {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "current": {},
     "hide": 0, "refresh": 1, "regex": ""},
    _variable("node", "Node", "label_values(jetson_info, node)"),
    _variable("device", "Device", 'label_values(jetson_info{node=~"$node"}, device)'),
]  # fmt: skip


def grafana_dashboard(catalogue: Catalogue) -> dict[str, Any]:
    """The dashboard document."""
    meta = catalogue.dashboards["grafana"]
    return {
        "title": meta["title"], "uid": meta["uid"], "description": meta.get("description", ""),
        "tags": list(meta.get("tags", [])), "editable": True, "schemaVersion": 39, "version": 1,
        "time": dict(meta["time"]), "refresh": meta.get("refresh", ""), "timezone": "", "graphTooltip": 1,
        "templating": {"list": TEMPLATING}, "annotations": {"list": []},
        "panels": _layout(catalogue.panels_in("grafana")),
    }  # fmt: skip


def _layout(panels: list[Panel]) -> list[dict[str, Any]]:
    """Panels placed in rows: a panel that does not fit beside the previous ones starts a new row."""
    placed, x, y, row_height = [], 0, 0, 0
    for panel in panels:
        if x + panel.width > GRID_COLUMNS:
            x, y, row_height = 0, y + row_height, 0
        placed.append(_panel(panel, {"x": x, "y": y, "w": panel.width, "h": panel.height}))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return placed


def _panel(panel: Panel, grid: dict[str, int]) -> dict[str, Any]:
    """One panel."""
    targets = panel.targets_in("grafana")
    overrides = [
        {"matcher": {"id": "byFrameRefID", "options": _ref(i)},
         "properties": [{"id": "unit", "value": UNITS[t.unit].grafana}, _RIGHT_AXIS]}
        for i, t in enumerate(targets) if t.unit
    ]  # fmt: skip
    if panel.kind == "graph":
        options: dict[str, Any] = _GRAPH_OPTIONS
    else:
        options = _NAME_STAT_OPTIONS if panel.text == "name" else {}
    return {
        "id": panel.id, "type": _PANEL_TYPES[panel.kind], "title": panel.title, "description": panel.description,
        "datasource": DATASOURCE, "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": UNITS[panel.unit].grafana}, "overrides": overrides},
        "options": options,
        "targets": [{"refId": _ref(i), "datasource": DATASOURCE, "expr": t.expr, "legendFormat": t.legend}
                    for i, t in enumerate(targets)],
    }  # fmt: skip


def _ref(index: int) -> str:
    """Grafana's refId of the index-th query: A, B, C, ..."""
    return chr(ord("A") + index)
