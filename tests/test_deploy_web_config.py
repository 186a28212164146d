"""deploy/overlays/web-config: the mapper behind TLS and basic auth, and a ServiceMonitor that scrapes it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from deploy_support import REPO_ROOT, run, tool
from tls_support import self_signed

from mapper.config import parse_config
from mapper.http.webconfig import WebConfigError, load_web_config

OVERLAY = REPO_ROOT / "deploy" / "overlays" / "web-config"


def rendered(directory: Path) -> dict[str, dict[str, Any]]:
    """The overlay's objects by kind (one of each)."""
    objects = [o for o in yaml.safe_load_all(run(tool("kubectl"), "kustomize", str(directory))) if o]
    return {o["kind"]: o for o in objects}


def test_the_overlay_wires_the_web_config_into_mapper_pod_and_service_monitor() -> None:
    objects = rendered(OVERLAY)
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    base = yaml.safe_load(rendered(REPO_ROOT / "deploy" / "base")["ConfigMap"]["data"]["config.yaml"])
    web_config_file = config["http"].pop("web_config_file")
    assert config == {**base, "http": {}}, "the overlay's config is the base one plus http.web_config_file"
    pod = objects["DaemonSet"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    web_mount = mounts[str(Path(web_config_file).parent)]
    assert web_mount["readOnly"] and volumes[web_mount["name"]]["secret"]["secretName"] == \
        objects["Secret"]["metadata"]["name"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    (endpoint,) = objects["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["scheme"] == "https" and endpoint["tlsConfig"]["serverName"] == "jetson-mapper"
    tls_secret = endpoint["tlsConfig"]["ca"]["secret"]["name"]
    tls_mount = next(m for m in container["volumeMounts"] if volumes[m["name"]].get("secret", {}).get("secretName")
                     == tls_secret)
    assert endpoint["basicAuth"]["username"]["key"] == "username"
    web = yaml.safe_load(base64.b64decode(objects["Secret"]["data"]["web.yml"]).decode())
    assert Path(web["tls_server_config"]["cert_file"]).parent == Path(tls_mount["mountPath"])


def test_the_shipped_web_config_fails_closed_until_a_hash_is_filled_in(tmp_path: Path) -> None:
    web = (OVERLAY / "web.yml").read_text(encoding="utf-8")
    self_signed(tmp_path, "tls")  # tls.crt and tls.key, as the jetson-mapper-tls Secret mounts them
    local = web.replace("/etc/jetson-mapper-tls", str(tmp_path))
    (tmp_path / "web.yml").write_text(local, encoding="utf-8")
    try:
        load_web_config(tmp_path / "web.yml")
    except WebConfigError as error:
        assert [p for p in error.problems if "basic_auth_users.prometheus: not a bcrypt hash" in p], error.problems
    else:
        raise AssertionError("the placeholder hash must be refused")
    hashed = "$2y$04$" + "a" * 53
    (tmp_path / "web.yml").write_text(local.replace("REPLACE-WITH-A-BCRYPT-HASH", hashed), encoding="utf-8")
    loaded = load_web_config(tmp_path / "web.yml")
    assert loaded.tls is not None and loaded.users == {"prometheus": hashed}
    config = yaml.safe_load((OVERLAY / "config.yaml").read_text(encoding="utf-8"))
    config["http"]["web_config_file"] = str(tmp_path / "web.yml")
    assert parse_config(config, tmp_path, {"NODE_NAME": "edge-1"}).http.web_config_file == str(tmp_path / "web.yml")
