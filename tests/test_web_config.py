"""/metrics and the REST reads behind the Prometheus exporter-toolkit web config: TLS and bcrypt basic auth."""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from common import free_port, wait_until
from tls_support import self_signed

REPO = Path(__file__).resolve().parents[1]
DEVICE_FILES = [str(REPO / "device-model" / "jetson-model.yaml"), str(REPO / "device-model" / "jetson-xavier.yaml")]
READ = "/api/v1/device/default/jetson-xavier/gpu_usage"


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash as `htpasswd -nB` writes it ($2y$), at the lowest cost to keep tests fast."""
    import bcrypt

    return "$2y$" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()[4:]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """`jetson-mapper run` (standalone, no jtop service) with a web config: TLS and user alice."""
    folder = tmp_path_factory.mktemp("web")
    self_signed(folder, "server")
    (folder / "web.yml").write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"},  # relative to web.yml
        "basic_auth_users": {"alice": bcrypt_hash("wonderland")},
    }), encoding="utf-8")
    port = free_port()
    (folder / "config.yaml").write_text(yaml.safe_dump({
        "grpc_server": {"socket_path": str(folder / "j.sock")}, "common": {"http_port": port},
        "http": {"address": "127.0.0.1", "web_config_file": str(folder / "web.yml")},
        "source": {"jtop_socket": str(folder / "no-jtop.sock")}, "standalone": {"files": DEVICE_FILES},
    }), encoding="utf-8")
    log = (folder / "mapper.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "mapper", "run", "--config", str(folder / "config.yaml")],
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: process.poll() is not None or "jetson-mapper up" in (folder / "mapper.log").read_text(),
                   "the mapper to start")
        assert process.poll() is None, (folder / "mapper.log").read_text()
        yield port, folder
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def fetch(url: str, cafile: Path | None = None, user: str | None = None, password: str = "",
          cert: tuple[Path, Path] | None = None) -> tuple[int, dict[str, str], str]:
    """GET with optional server CA, basic auth and client certificate; (status, headers, body), status 0 on a
    connection or TLS failure."""
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    if context is not None and cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()
    except (OSError, ssl.SSLError) as error:
        return 0, {}, str(error)


def test_plain_http_and_anonymous_reads_are_refused(secured: tuple[int, Path]) -> None:
    port, folder = secured
    assert fetch(f"http://127.0.0.1:{port}/metrics")[0] == 0  # TLS only
    for path in ("/metrics", READ):
        status, headers, _ = fetch(f"https://127.0.0.1:{port}{path}", folder / "server.crt")
        assert (status, headers.get("WWW-Authenticate")) == (401, "Basic"), path
    assert fetch(f"https://127.0.0.1:{port}/metrics", folder / "server.crt", "alice", "wrong")[0] == 401
    assert fetch(f"https://127.0.0.1:{port}/metrics", folder / "server.crt", "mallory", "wonderland")[0] == 401
    assert fetch(f"https://127.0.0.1:{port}/metrics", folder / "server.crt", "alice", "w" * 100)[0] == 401


def test_the_right_user_reads_and_the_probes_stay_open(secured: tuple[int, Path]) -> None:
    port, folder = secured
    status, _, page = fetch(f"https://127.0.0.1:{port}/metrics", folder / "server.crt", "alice", "wonderland")
    assert status == 200 and "jetson_mapper_source_up" in page
    for probe in ("/healthz", "/readyz"):  # kubelet probes carry no credentials
        assert fetch(f"https://127.0.0.1:{port}{probe}", folder / "server.crt")[0] in (200, 503), probe


def write_web_config(folder: Path, document: Any) -> Path:
    """A web config file in `folder`."""
    path = folder / "web.yml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def web_config_problems(path: Path) -> list[str]:
    """What load_web_config refuses in a file ([] when it loads)."""
    from mapper.http.webconfig import WebConfigError, load_web_config

    try:
        load_web_config(path)
    except WebConfigError as error:
        return error.problems
    return []


def test_the_web_config_is_checked_when_the_mapper_starts(tmp_path: Path) -> None:
    self_signed(tmp_path, "server")
    tls = {"cert_file": "server.crt", "key_file": "server.key"}
    assert web_config_problems(write_web_config(tmp_path, {"tls_server_config": tls})) == []
    cases: list[tuple[Any, str]] = [
        ({"tls_server_config": {**tls, "key_fil": "x"}}, "tls_server_config.key_fil: unknown key; did you mean"),
        ({"tls_server_config": {"cert_file": "server.crt"}}, "tls_server_config: key_file is missing"),
        ({"tls_server_config": {**tls, "cert_file": "nope.crt"}}, "tls_server_config.cert_file: "),
        ({"tls_server_config": {**tls, "client_ca_file": "server.crt"}},
         "tls_server_config.client_ca_file: needs client_auth_type"),
        ({"tls_server_config": {**tls, "client_auth_type": "RequestClientCert"}},
         "tls_server_config.client_auth_type: 'RequestClientCert' is not supported"),
        ({"tls_server_config": {**tls, "min_version": "TLS99"}}, "tls_server_config.min_version: 'TLS99'"),
        ({"tls_server_config": {**tls, "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
         "tls_server_config.cipher_suites: not supported by jetson-mapper"),
        ({"basic_auth_users": {"alice": "plain-text"}}, "basic_auth_users.alice: not a bcrypt hash"),
        ({"rate_limit": {"burst": 1}}, "rate_limit: not supported by jetson-mapper"),
        ({"basic_auth_user": {}}, "basic_auth_user: unknown key; did you mean 'basic_auth_users'?"),
    ]
    for document, expected in cases:
        path = write_web_config(tmp_path, document)
        found = web_config_problems(path)
        assert any(p.startswith(f"{path}: {expected}") for p in found), (document, found)


def test_a_missing_web_config_file_is_a_config_problem(tmp_path: Path) -> None:
    from mapper.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as error:
        parse_config({"http": {"web_config_file": str(tmp_path / "nope.yml")}}, tmp_path, {})
    (problem,) = error.value.problems
    assert problem.startswith(f"http.web_config_file: cannot read {tmp_path / 'nope.yml'}"), problem


def test_client_certificates_when_the_web_config_requires_them(tmp_path: Path) -> None:
    from http_support import http_app

    from mapper.config import HttpConfig

    server = self_signed(tmp_path, "server")
    client = self_signed(tmp_path, "client", common_name="prometheus")
    web = write_web_config(tmp_path, {"tls_server_config": {
        "cert_file": "server.crt", "key_file": "server.key", "client_ca_file": "client.crt",
        "client_auth_type": "RequireAndVerifyClientCert"}})
    with http_app(tmp_path, HttpConfig(address="127.0.0.1", web_config_file=str(web))) as app:
        url = f"https://127.0.0.1:{app.http.server_address[1]}/metrics"
        assert fetch(url, server[0])[0] == 0
        assert fetch(url, server[0], cert=client)[0] == 200


def test_prometheus_scrapes_through_tls_and_basic_auth(secured: tuple[int, Path]) -> None:
    from prometheus import running_prometheus

    port, folder = secured
    (folder / "password").write_text("wonderland", encoding="utf-8")
    # as deploy/overlays/web-config's ServiceMonitor: HTTPS checked against the name jetson-mapper, a user
    job = {"job_name": "jetson-mapper", "honor_labels": True, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
           "scheme": "https", "tls_config": {"ca_file": str(folder / "server.crt"), "server_name": "jetson-mapper"},
           "basic_auth": {"username": "alice", "password_file": str(folder / "password")}}
    with running_prometheus([], scrape_configs=[job]) as prometheus:
        (sample,) = prometheus.wait_for('up{job="jetson-mapper"}', accept=lambda r: r and r[0]["value"][1] == "1")
        assert sample["metric"]["instance"] == f"127.0.0.1:{port}"
        assert prometheus.wait_for("jetson_mapper_source_up")
