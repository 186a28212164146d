"""The KubeSphere dashboards against the upstream CRDs (kubesphere/monitoring-dashboard, as KubeSphere 3.1-3.4
installs them), strictly: a field the CRD does not declare is an error, as for the Device CRDs."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
import yaml
from dashboard import kubesphere_dashboard
from deploy_support import REPO_ROOT, kubesphere_crd, kubesphere_crd_schema, load_documents, run, tool

CRD_FILES = {"cluster": "monitoring.kubesphere.io_clusterdashboards.yaml",
             "project": "monitoring.kubesphere.io_dashboards.yaml"}
SCOPES = {"cluster": "Cluster", "project": "Namespaced"}
OVERLAY = REPO_ROOT / "deploy" / "overlays" / "kubesphere"


@pytest.fixture(scope="module")
def overlay_dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards as `kubectl apply -k deploy/overlays/kubesphere` sends them, by kind."""
    objects = [o for o in yaml.safe_load_all(run(tool("kubectl"), "kustomize", str(OVERLAY))) if o]
    return {o["kind"]: o for o in objects if o["apiVersion"].startswith("monitoring.kubesphere.io/")}


@pytest.mark.parametrize("name", sorted(CRD_FILES))
def test_generated_dashboard_is_valid_against_the_crd(name: str) -> None:
    crd = kubesphere_crd(CRD_FILES[name])
    document = kubesphere_dashboard(name)
    group, version = document["apiVersion"].split("/")
    assert (group, document["kind"]) == (crd["spec"]["group"], crd["spec"]["names"]["kind"])
    assert version == "v1alpha2" and crd["spec"]["scope"] == SCOPES[name]
    jsonschema.validate(document, kubesphere_crd_schema(CRD_FILES[name], version))


def test_the_overlay_applies_both_dashboards_where_they_belong(overlay_dashboards: dict[str, dict[str, Any]]) -> None:
    assert set(overlay_dashboards) == {"ClusterDashboard", "Dashboard"}
    cluster, project = overlay_dashboards["ClusterDashboard"], overlay_dashboards["Dashboard"]
    jsonschema.validate(cluster, kubesphere_crd_schema(CRD_FILES["cluster"]))
    jsonschema.validate(project, kubesphere_crd_schema(CRD_FILES["project"]))
    assert "namespace" not in cluster["metadata"], "a ClusterDashboard is cluster-scoped"
    # KubeSphere limits a project dashboard's queries to its namespace: the one the shipped Devices live in.
    device_namespaces = {d["metadata"]["namespace"] for p in sorted((REPO_ROOT / "device-model").glob("*.yaml"))
                         for d in load_documents(p) if d.get("kind") == "Device"}
    assert device_namespaces == {project["metadata"]["namespace"]} == {"default"}
    for name, applied in (("cluster", cluster), ("project", project)):
        assert applied["spec"] == kubesphere_dashboard(name)["spec"]


@pytest.mark.parametrize(("where", "field"), [
    (("spec",), "templating"),                              # a v1alpha1 field, not in v1alpha2
    (("spec", "panels", 0), "legends"),
    (("spec", "panels", -1, "targets", 0), "instant"),
    (("spec", "panels", -1, "yaxes", 0), "unit"),
])  # fmt: skip
def test_strict_schema_rejects_unknown_fields(where: tuple[Any, ...], field: str) -> None:
    schema = kubesphere_crd_schema(CRD_FILES["cluster"])
    document = copy.deepcopy(kubesphere_dashboard("cluster"))
    jsonschema.validate(document, schema)
    node = document
    for key in where:
        node = node[key]
    node[field] = True
    with pytest.raises(jsonschema.ValidationError, match=field):
        jsonschema.validate(document, schema)
