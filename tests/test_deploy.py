"""The kustomize deployment: every directory renders, objects validate, rules pass promtool, config loads."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_support import (
    REPO_ROOT,
    SPEC_METRICS,
    load_documents,
    metric_names,
    promtool_check_rules,
    run,
    tool,
)

from mapper.config import parse_config

DEPLOY = REPO_ROOT / "deploy"
KUSTOMIZE_DIRS = sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))
KUBERNETES_VERSIONS = ("1.26", "1.32")  # the seed's cluster, and the kubectl this project tests with
DASHBOARD_KINDS = {"ClusterDashboard", "Dashboard"}  # validated against KubeSphere's CRDs: test_dashboards_kubesphere
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", *DASHBOARD_KINDS}
NODE_EXPORTER_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "kubesphere-node-exporter.yaml"
NODE_EXPORTER_PATCH = DEPLOY / "overlays" / "kubesphere" / "cluster-fixes" / "node-exporter-edge-patch.yaml"


def render(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize <directory>` as a list of objects."""
    return [doc for doc in yaml.safe_load_all(run(tool("kubectl"), "kustomize", str(directory))) if doc]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single object of a kind."""
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every kustomization, rendered once, keyed by its path under deploy/."""
    return {str(d.relative_to(DEPLOY)): render(d) for d in KUSTOMIZE_DIRS}


def test_every_overlay_is_there() -> None:
    names = {str(d.relative_to(DEPLOY)) for d in KUSTOMIZE_DIRS}
    assert names == {"base", "overlays/kubeedge", "overlays/kubesphere", "overlays/kubesphere/cluster-fixes",
                     "overlays/web-config"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builtin_kinds_validate_strictly(rendered: dict[str, list[dict[str, Any]]], version: str) -> None:
    checked = 0
    for objects in rendered.values():
        for obj in objects:
            if obj["kind"] not in CUSTOM_KINDS:
                kubernetes_validate.validate(obj, version, strict=True)
                checked += 1
    assert checked >= 13


def test_strict_validation_catches_a_misspelt_field(rendered: dict[str, list[dict[str, Any]]]) -> None:
    daemonset = one(rendered["base"], "DaemonSet")
    daemonset["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemonset, "1.32", strict=True)


def config_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The mapper config file carried by the rendered ConfigMap."""
    config: dict[str, Any] = yaml.safe_load(one(objects, "ConfigMap")["data"]["config.yaml"])
    return config


def test_configmap_holds_a_config_the_mapper_accepts(rendered: dict[str, list[dict[str, Any]]]) -> None:
    raw = config_of(rendered["base"])
    assert raw["grpc_server"]["socket_path"] == "/run/jetson-mapper/jetson.sock"
    assert raw["common"] == {
        "name": "jetson-mapper",
        "version": raw["common"]["version"],
        "api_version": "v1.0.0",
        "protocol": "jetson",
        "address": "127.0.0.1",
        "edgecore_sock": "/etc/kubeedge/dmi.sock",
        "http_port": 7777,
    }
    assert raw["source"] == {"jtop_socket": "/run/jtop.sock", "interval": 1.0}
    config = parse_config(raw, Path("/etc/jetson-mapper"), {"NODE_NAME": "edge-1"})
    assert (config.common.protocol, config.node_name, config.http.address) == ("jetson", "edge-1", "0.0.0.0")


def test_daemonset_matches_the_config_and_the_edge(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["base"]
    config = config_of(objects)
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert pod["nodeSelector"]["nvidia.com/jetson"] == "true"
    (term,) = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert {"key": "node-role.kubernetes.io/edge", "operator": "Exists"} in term["matchExpressions"]
    assert {"key": "node-role.kubernetes.io/edge", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert container["resources"] == {
        "requests": {"cpu": "20m", "memory": "64Mi"},
        "limits": {"cpu": "200m", "memory": "128Mi"},
    }
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http-metrics", config["common"]["http_port"])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # Each socket the config names is reachable through a mount of the same host path (tests/test_deploy_mounts.py
    # checks which of them are read-only).
    for name, path in (("mapper-socket", config["grpc_server"]["socket_path"]),
                       ("kubeedge-dmi", config["common"]["edgecore_sock"])):
        assert Path(mounts[name]["mountPath"]) == Path(path).parent
        assert volumes[name]["hostPath"]["path"] == str(Path(path).parent)
    assert mounts["jtop-sock"]["mountPath"] == config["source"]["jtop_socket"] and mounts["jtop-sock"]["readOnly"]
    assert volumes["jtop-sock"]["hostPath"] == {"path": "/run/jtop.sock", "type": "Socket"}
    assert volumes["config"]["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]
    args = container["args"]
    assert args[args.index("--config") + 1] == f"{mounts['config']['mountPath']}/config.yaml"


def test_pod_attribution_reads_the_hosts_files_read_only(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["base"]
    pods = parse_config(config_of(objects), Path("/etc/jetson-mapper"), {}).pods
    pod = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert pods.enabled
    for path, host_path in ((pods.proc_root, "/proc"), (pods.containers_dir, "/var/log/containers")):
        mount = mounts[path]
        assert mount["readOnly"] is True, mount
        assert volumes[mount["name"]]["hostPath"]["path"] == host_path
    assert not pod.get("hostPID") and not container["securityContext"].get("capabilities", {}).get("add")


def test_service_and_servicemonitor_meet(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["base"]
    service, monitor = one(objects, "Service"), one(objects, "ServiceMonitor")
    assert service["spec"]["clusterIP"] == "None"
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"]) == ("http-metrics", 7777)
    pod_labels = one(objects, "DaemonSet")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http-metrics" and endpoint["path"] == "/metrics"
    assert endpoint["honorLabels"] is True
    assert {
        "action": "replace",
        "sourceLabels": ["__meta_kubernetes_pod_node_name"],
        "targetLabel": "instance",
    } in (endpoint["relabelings"])


def test_prometheus_rules_pass_promtool_and_their_unit_tests(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    rule = one(rendered["base"], "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    promtool_check_rules(groups, tmp_path, "jetson-mapper-rules.yaml")
    shutil.copy(DEPLOY / "tests" / "rules-test.yaml", tmp_path / "rules-test.yaml")
    output = run(tool("promtool"), "test", "rules", "rules-test.yaml", cwd=tmp_path)
    assert "SUCCESS" in output
    rules = [r for g in groups for r in g["rules"]]
    alerts = {r["alert"] for r in rules if "alert" in r}
    assert alerts == {
        "JetsonSourceDown",
        "JetsonMapperNotReporting",
        "JetsonGpuHot",
        "JetsonCpuHot",
        "JetsonPowerModeChanged",
    }
    records = {r["record"] for r in rules if "record" in r}
    assert records == {
        "gpu_info_board_info",
        "gpu_info_hardware_info",
        "gpu_nvpmode_info",
        "gpu_uptime",
        "gpu_usage_cpu",
        "gpu_usage_gpu",
        "gpu_usage_fan",
        "gpu_temperatures",
        "gpu_usage_power",
        "node_pod_namespace:jetson_pod_gpu_memory_bytes:sum",
    }
    for r in rules:
        used = metric_names(r["expr"])
        assert used and used <= SPEC_METRICS, (r.get("alert") or r.get("record"), used - SPEC_METRICS)


def test_promtool_rule_tests_can_fail(rendered: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    promtool_check_rules(
        one(rendered["base"], "PrometheusRule")["spec"]["groups"], tmp_path, "jetson-mapper-rules.yaml"
    )
    broken = (DEPLOY / "tests" / "rules-test.yaml").read_text(encoding="utf-8").replace("value: 1250", "value: 1.25")
    (tmp_path / "rules-test.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(AssertionError, match="FAILED"):
        run(tool("promtool"), "test", "rules", "rules-test.yaml", cwd=tmp_path)


def test_kubeedge_overlay_needs_no_operator(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["overlays/kubeedge"]
    assert {o["kind"] for o in objects} == {"ServiceAccount", "ConfigMap", "Service", "DaemonSet"}
    assert {o["metadata"]["namespace"] for o in objects} == {"kubeedge"}
    annotations = one(objects, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(config_of(objects)["common"]["http_port"]),
        "prometheus.io/path": "/metrics",
    }


def test_kubesphere_overlay_is_found_by_kubesphere_prometheus(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered["overlays/kubesphere"]
    assert {o["kind"] for o in objects} >= DASHBOARD_KINDS
    namespaces = {o["metadata"]["namespace"] for o in objects if o["kind"] not in DASHBOARD_KINDS}
    assert namespaces == {"kubesphere-monitoring-system"}
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kube-prometheus" for o in objects)
    assert one(objects, "ServiceMonitor")["metadata"]["labels"]["app.kubernetes.io/vendor"] == "kubesphere"
    rule_labels = one(objects, "PrometheusRule")["metadata"]["labels"]
    assert (rule_labels["prometheus"], rule_labels["role"]) == ("k8s", "alert-rules")
    # Selectors are immutable on a DaemonSet: the overlay must leave them alone.
    base_selector = one(rendered["base"], "DaemonSet")["spec"]["selector"]
    assert one(objects, "DaemonSet")["spec"]["selector"] == base_selector


def test_kubesphere_cluster_fixes_expose_prometheus(rendered: dict[str, list[dict[str, Any]]]) -> None:
    service = one(rendered["overlays/kubesphere/cluster-fixes"], "Service")
    assert service["spec"]["type"] == "NodePort"
    assert [p["nodePort"] for p in service["spec"]["ports"]] == [32143]


def test_node_exporter_patch_lets_kubesphere_node_exporter_onto_edge_nodes(tmp_path: Path) -> None:
    shutil.copy(NODE_EXPORTER_FIXTURE, tmp_path / "node-exporter.yaml")
    shutil.copy(NODE_EXPORTER_PATCH, tmp_path / "patch.yaml")
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [node-exporter.yaml]\npatches: [{path: patch.yaml}]\n", encoding="utf-8"
    )
    original = load_documents(NODE_EXPORTER_FIXTURE)[0]["spec"]["template"]["spec"]
    patched = one(render(tmp_path), "DaemonSet")
    kubernetes_validate.validate(patched, "1.26", strict=True)
    pod = patched["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    expressions = [e for t in terms for e in t["matchExpressions"]]
    assert all(e["key"] != "node-role.kubernetes.io/edge" for e in expressions)
    assert (pod["dnsPolicy"], pod["hostNetwork"]) == ("ClusterFirstWithHostNet", True)
    assert pod["containers"] == original["containers"], "the patch must not touch the containers"
