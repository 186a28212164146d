"""MQTT over TLS against a real mosquitto with a throw-away CA made by openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from common import free_port, wait_until
from mosquitto import Mosquitto, Subscriber, broker_dir

from mapper.sinks.mqtt.client import MqttPublisher
from mapper.sinks.mqtt.settings import parse_mqtt_settings

__all__ = ["broker_dir"]  # fixture used by name

pytestmark = pytest.mark.slow


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, server cert, server key)."""
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt"))
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=jm-test-ca",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(extensions),
        "-out",
        str(cert),
    )
    return ca, cert, key


def test_tls_broker_is_reached_with_the_configured_ca_and_refused_without(broker_dir: Path) -> None:
    ca, cert, key = _make_certificates(broker_dir)
    tls_port = free_port()
    broker = Mosquitto(
        broker_dir, extra_config=(f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n")
    )
    broker.start()
    watcher = Subscriber(broker.port, "tls/#")
    trusted_settings, problems = parse_mqtt_settings({"tls": {"ca_file": str(ca)}}, {})
    assert problems == []
    trusted = MqttPublisher(trusted_settings, "trusted")
    untrusted = MqttPublisher(parse_mqtt_settings({"backoff_initial": 1, "backoff_max": 2}, {})[0], "untrusted")
    address = f"ssl://127.0.0.1:{tls_port}"
    try:
        trusted.publish(address, "tls/ok", b"1", 1, False)
        untrusted.publish(address, "tls/unverified", b"1", 1, False)
        wait_until(lambda: watcher.messages("tls/ok") != [], "message over TLS")
        wait_until(lambda: untrusted.broker_stats()[address].errors >= 1, "certificate failure counted")
        assert not untrusted.broker_stats()[address].connected
        assert trusted.broker_stats()[address].connected
        assert watcher.messages("tls/unverified") == []
    finally:
        trusted.close()
        untrusted.close()
        watcher.close()
        broker.stop()
