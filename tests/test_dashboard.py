"""The Grafana dashboard: valid PromQL on spec metric names only, wired to its template variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard import dashboard_queries, load_dashboard, panels, raw_queries
from deploy_support import SPEC_METRICS, metric_names, promtool_check_rules


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


def test_queries_use_only_spec_metric_names() -> None:
    for query in raw_queries(load_dashboard()):
        used = metric_names(query)
        assert used and used <= SPEC_METRICS, (query, used - SPEC_METRICS)


def test_the_dashboard_covers_the_board() -> None:
    used = set().union(*(metric_names(q) for q in raw_queries(load_dashboard())))
    wanted = {
        "jetson_gpu_usage_ratio", "jetson_gpu_frequency_hertz", "jetson_cpu_core_usage_ratio",
        "jetson_memory_used_bytes", "jetson_temperature_celsius", "jetson_power_watts",
        "jetson_power_input_watts", "jetson_fan_speed_ratio", "jetson_power_mode",
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
            assert 'node=~"$node"' in target["expr"], (panel["title"], target["expr"])
