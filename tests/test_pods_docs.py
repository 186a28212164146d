"""docs/pods.md matches the code: its config block, the defaults it names, the figures, lookup results, rule."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from deploy_support import SPEC_METRICS, metric_names

from mapper.config import parse_config
from mapper.pods.settings import POD_KEYS, PodSettings
from mapper.pods.usage import RESULTS
from mapper.sinks.prometheus.pods import POD_FAMILIES

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "pods.md").read_text(encoding="utf-8")


def test_the_config_block_is_valid_and_names_the_defaults() -> None:
    block = re.search(r"## Turning it on.*?```yaml\n(.*?)```", DOC, re.S)
    assert block is not None
    raw = yaml.safe_load(block.group(1))
    assert tuple(raw["pods"]) == POD_KEYS
    settings = parse_config(raw, REPO, {}).pods
    assert settings == PodSettings(True, "/host/proc", "/host/var/log/containers", 20)
    defaults = PodSettings()
    for key, value in (("enabled", "false"), ("proc_root", defaults.proc_root),
                       ("containers_dir", defaults.containers_dir)):
        assert re.search(rf"{key}: .*# .*default {re.escape(value)}", block.group(1)), key
    assert raw["pods"]["top"] == defaults.top


def test_the_figures_and_results_are_the_codes() -> None:
    table = re.search(r"## The figures\n\n(.*?)\n\n", DOC, re.S)
    assert table is not None
    documented = re.findall(r"^\| `(jetson_pod_[a-z_]+)` \|", table.group(1), re.M)
    assert documented == [name for name, _, _ in POD_FAMILIES]
    listed = re.search(r"by result \((.*?)\)", DOC.replace("\n", " "))
    assert listed is not None and re.findall(r"`([a-z]+)`", listed.group(1)) == list(RESULTS)


def test_the_queries_use_real_metrics_and_the_real_rule() -> None:
    queries = re.search(r"```promql\n(.*?)```", DOC, re.S)
    assert queries is not None
    rules = yaml.safe_load((REPO / "deploy" / "base" / "prometheusrule.yaml").read_text(encoding="utf-8"))
    records = {r["record"] for g in rules["spec"]["groups"] for r in g["rules"] if "record" in r}
    for line in queries.group(1).splitlines():
        if line and not line.startswith("#"):
            assert metric_names(line) <= SPEC_METRICS, line
            for record in re.findall(r"\b[a-z_]+:[a-z_]+:[a-z_]+\b", line):
                assert record in records, record
