"""The Grafana dashboard: valid PromQL on documented metric names only, wired to its template variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard import dashboard_queries, load_dashboard, metric_names, node_exporter_metrics, panels, raw_queries
from deploy_support import promtool_check_rules
from test_metrics_docs import documented_families


def as_rule_groups(queries: list[str]) -> list[dict[str, object]]:
    """Each query as a recording rule, so that `promtool check rules` parses it."""
    rules = [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    return [{"name": "dashboard-queries", "rules": rules}]


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 15
    assert all("$" not in q for q in queries)
    promtool_check_rules(as_rule_groups(queries), tmp_path)


def test_promtool_rejects_a_broken_query(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="check rules"):
        promtool_check_rules(as_rule_groups(["sum by (node (jetson_mapper_source_up)"]), tmp_path)


def test_queries_use_only_documented_metric_names() -> None:
    documented = set(documented_families()) | node_exporter_metrics()
    for query in raw_queries(load_dashboard()):
        used = metric_names(query)
        assert used and used <= documented, (query, used - documented)


def test_the_dashboard_covers_the_board_and_the_node() -> None:
    used = set().union(*(metric_names(q) for q in raw_queries(load_dashboard())))
    wanted = {
        "jetson_gpu_usage_ratio", "jetson_gpu_frequency_hertz", "jetson_cpu_core_usage_ratio",
        "jetson_memory_used_bytes", "jetson_temperature_celsius", "jetson_power_watts",
        "jetson_power_input_watts", "jetson_fan_speed_ratio", "jetson_power_mode", "jetson_clocks_enabled",
        "jetson_mapper_source_up", "jetson_mapper_last_sample_timestamp_seconds", "jetson_mapper_reports_total",
        "jetson_mapper_sink_errors_total", "node_cpu_seconds_total", "node_memory_MemAvailable_bytes",
    }  # fmt: skip
    assert wanted <= used, wanted - used


def test_panels_use_the_datasource_and_node_variables() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert {"node", "device"} <= variables.keys()
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert '=~"$node"' in target["expr"], (panel["title"], target["expr"])


def test_panels_tile_the_grid_without_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in panels(load_dashboard()):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        x0, y0 = grid["x"], grid["y"]
        mine = {(x, y) for x in range(x0, x0 + grid["w"]) for y in range(y0, y0 + grid["h"])}
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
