"""One panel catalogue, three dashboards: the generated files are fresh, the generator's rules hold, and every
query of every dashboard is valid PromQL on documented metrics."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboard import grafana_expr, kubesphere_targets, metric_names, node_exporter_metrics, raw_queries
from deploy_support import promtool_check_rules
from test_metrics_docs import documented_families

from mapper.dashboards.catalogue import CATALOGUE_PATH, CatalogueError, load_catalogue, parse_catalogue
from mapper.dashboards.grafana import grafana_dashboard
from mapper.dashboards.kubesphere import KubeSphereExprError, for_kubesphere, kubesphere_dashboard
from mapper.dashboards.outputs import COMMAND, GRAFANA_FILE, KUBESPHERE_FILES, REPO_ROOT, render, stale

GENERATED = [GRAFANA_FILE, *KUBESPHERE_FILES.values()]
DASHBOARDS_DOC = REPO_ROOT / "docs" / "dashboards.md"
# What issue 11 asks the fleet view to show, by the metric that shows it.
FLEET = {
    "jetson_gpu_usage_ratio", "jetson_gpu_frequency_hertz", "jetson_cpu_usage_ratio", "jetson_memory_used_bytes",
    "jetson_temperature_celsius", "jetson_power_input_watts", "jetson_fan_speed_ratio", "jetson_power_mode",
    "jetson_clocks_enabled", "jetson_mapper_source_up", "jetson_mapper_last_sample_timestamp_seconds",
    "jetson_mapper_reports_total", "jetson_mapper_sink_errors_total", "node_cpu_seconds_total",
    "node_memory_MemAvailable_bytes",
}  # fmt: skip


def raw_catalogue() -> dict[str, Any]:
    """The catalogue file's YAML data."""
    data: dict[str, Any] = yaml.safe_load(CATALOGUE_PATH.read_text(encoding="utf-8"))
    return data


def test_generated_dashboards_are_fresh() -> None:
    out_of_date = stale(render(load_catalogue()))
    assert not out_of_date, f"{out_of_date} differ from the catalogue: run {COMMAND}"


def test_the_check_command_passes_on_the_repository() -> None:
    done = subprocess.run([sys.executable, "-m", "mapper.dashboards", "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_a_hand_edited_dashboard_is_found(tmp_path: Path) -> None:
    for relative in GENERATED:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / relative, tmp_path / relative)
    files = render(load_catalogue())
    assert stale(files, tmp_path) == []
    cluster = tmp_path / KUBESPHERE_FILES["cluster"]
    cluster.write_text(cluster.read_text(encoding="utf-8").replace("step: 1m", "step: 5m", 1), encoding="utf-8")
    (tmp_path / GRAFANA_FILE).unlink()
    assert stale(files, tmp_path) == [GRAFANA_FILE, KUBESPHERE_FILES["cluster"]]


def test_a_catalogue_change_without_regeneration_is_found() -> None:
    raw = raw_catalogue()
    gpu = next(p for p in raw["panels"] if p["title"] == "GPU usage")
    gpu["title"] = "GPU load"
    assert stale(render(parse_catalogue(raw))) == GENERATED


def docs_example_panel() -> dict[str, Any]:
    """The panel entry docs/dashboards.md shows under "Adding a panel"."""
    section = DASHBOARDS_DOC.read_text(encoding="utf-8").split("## Adding a panel", 1)[1]
    (entry,) = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert isinstance(entry, dict)
    return entry


def test_the_documented_entry_adds_its_panel_to_every_dashboard() -> None:
    raw = raw_catalogue()
    entry = {**docs_example_panel(), "id": max(p["id"] for p in raw["panels"]) + 1}  # the next free id
    raw["panels"].append(entry)
    catalogue = parse_catalogue(raw)
    (grafana,) = [p for p in grafana_dashboard(catalogue)["panels"] if p["id"] == entry["id"]]
    assert grafana["targets"][0]["expr"] == entry["targets"][0]["expr"]
    for name in KUBESPHERE_FILES:
        (panel,) = [p for p in kubesphere_dashboard(catalogue, name)["spec"]["panels"] if p["id"] == entry["id"]]
        # docs/dashboards.md says what it becomes for KubeSphere.
        assert panel["targets"] == [{"expr": "jetson_processes_gpu_memory_bytes", "refId": 1, "step": "1m",
                                     "legendFormat": entry["targets"][0]["legend"]}]
        assert panel["yaxes"] == [{"format": "Byte", "decimals": 1}]
    assert "becomes `jetson_processes_gpu_memory_bytes` there" in DASHBOARDS_DOC.read_text(encoding="utf-8")


def test_every_catalogue_problem_is_named() -> None:
    raw = raw_catalogue()
    broken = copy.deepcopy(raw["panels"][:4])
    broken[0]["unit"] = "furlongs"
    broken[1]["id"] = broken[0]["id"]
    broken[2]["targets"] = [{"expr": 'jetson_uptime_seconds{node=~"$node"} > $device', "in": ["grafana"]}]
    broken[3]["targets"] = [{"expr": "jetson_mapper_source_up", "legnd": "{{node}}"}]
    broken.append({"id": 98, "title": "x", "kind": "graph", "unit": "none", "in": ["project"],
                   "targets": [{"expr": 'jetson_uptime_seconds{namespace="default"}'}]})
    broken.append({"id": 97, "title": "y", "kind": "graph", "unit": "none", "single": True,
                   "targets": [{"expr": 'jetson_uptime_seconds{node=~"$node"}', "unit": "rpm"}]})
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue({**raw, "panels": broken})
    problems = "\n".join(caught.value.problems)
    for expected in ("unit 'furlongs'", "id 1 is used twice", "$node and $device only as matchers",
                     "unknown key 'legnd'", "filters by the node variable", "no namespace matcher",
                     "single and text are for stat panels", "own unit", "no target runs on project"):
        assert expected in problems, (expected, problems)


@pytest.mark.parametrize(("grafana", "kubesphere"), [
    ('jetson_gpu_usage_ratio{node=~"$node", device=~"$device"}', "jetson_gpu_usage_ratio"),
    ('sum by (node) (rate(jetson_mapper_reports_total{node=~"$node"}[$__rate_interval]))',
     "sum by (node) (rate(jetson_mapper_reports_total[5m]))"),
    ('node_uname_info{job="node-exporter", nodename=~"$node"}', 'node_uname_info{job="node-exporter"}'),
    ('jetson_temperature_celsius{sensor="gpu", node=~"$node", device=~"$device"} > 80',
     'jetson_temperature_celsius{sensor="gpu"} > 80'),
    ('jetson_info{model=~"a{1}, b", node=~"$node"}', 'jetson_info{model=~"a{1}, b"}'),
])  # fmt: skip
def test_kubesphere_expressions_drop_the_variable_matchers(grafana: str, kubesphere: str) -> None:
    assert for_kubesphere(grafana) == kubesphere


@pytest.mark.parametrize("expr", ['jetson_info{node="$node"}', "jetson_info{node=~$node}", 'label_values("$device")'])
def test_a_variable_kubesphere_cannot_run_is_refused(expr: str) -> None:
    with pytest.raises(KubeSphereExprError):
        for_kubesphere(expr)


def all_queries() -> dict[str, list[str]]:
    """Every query of every generated dashboard, as the dashboard's viewer sends it."""
    from dashboard import load_dashboard

    return {
        "grafana": [grafana_expr(q) for q in raw_queries(load_dashboard())],
        **{name: [t["expr"] for _, t in kubesphere_targets(name)] for name in KUBESPHERE_FILES},
    }


def test_every_query_of_every_dashboard_is_valid_promql(tmp_path: Path) -> None:
    queries = [q for qs in all_queries().values() for q in qs]
    assert all("$" not in q for q in queries)
    rules = [{"record": f"dashboard:query_{i}", "expr": q} for i, q in enumerate(queries)]
    promtool_check_rules([{"name": "dashboards", "rules": rules}], tmp_path)


def test_dashboards_read_only_documented_metrics() -> None:
    documented = set(documented_families()) | node_exporter_metrics()
    assert {"node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_uname_info"} <= documented
    node_metrics: set[str] = set()
    for name, queries in all_queries().items():
        for query in queries:
            used = metric_names(query)
            assert used and used <= documented, (name, query, used - documented)
            node_metrics |= {m for m in used if m.startswith("node_")}
    assert node_metrics == node_exporter_metrics(), "docs/kubesphere.md lists the node-exporter metrics read"


def test_project_panels_read_device_series_only() -> None:
    """KubeSphere sets namespace=<project> on every selector: only series with the Device's namespace answer."""
    families = documented_families()
    for panel, target in kubesphere_targets("project"):
        for metric in metric_names(target["expr"]):
            assert metric in families and {"namespace", "device"} <= families[metric].labels, (panel["title"], metric)


def test_the_cluster_dashboard_shows_what_the_fleet_view_needs() -> None:
    used = set().union(*(metric_names(t["expr"]) for _, t in kubesphere_targets("cluster")))
    assert used >= FLEET, FLEET - used


def test_kubesphere_panels_are_what_the_console_draws() -> None:
    for name in KUBESPHERE_FILES:
        panels = [p for p, _ in kubesphere_targets(name)]
        assert {p["type"] for p in panels} <= {"singlestat", "graph"}
        for panel in panels:
            assert panel["targets"] and all(t["step"] == "1m" for t in panel["targets"])
            if panel["type"] == "graph":  # the console colours legend entries from `colors` only
                assert panel["colors"] and panel["yaxes"][0]["format"]
            else:
                assert panel["valueName"] == "last" and len(panel["targets"]) == 1


def test_a_bad_catalogue_file_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "panels.yaml"
    broken.write_text("panels: [\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(broken)
    raw = raw_catalogue()
    del raw["dashboards"]["grafana"]["uid"]
    raw["dashboards"]["cluster"]["time"] = "1h"
    raw["panels"][0]["width"] = 30
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(raw)
    assert [p.split(":")[0] for p in caught.value.problems] == ["dashboards.grafana", "dashboards.cluster",
                                                                 "panel 1 (Board)"]
