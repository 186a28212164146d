"""Config files: misspelt keys, one rule for numbers, and every unusable file refused in one message (exit 2)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from common import free_port

from mapper.config import ConfigError, parse_config

REPO = Path(__file__).resolve().parents[1]


def problems_of(raw: dict[str, Any]) -> list[str]:
    """The problems parse_config finds in a raw document ([] when it is accepted)."""
    try:
        parse_config(raw, REPO, {})
    except ConfigError as error:
        return error.problems
    return []


@pytest.mark.parametrize(("raw", "expected"), [
    ({"source": {"jtop_sock": "/x"}}, "source.jtop_sock: unknown key; did you mean 'jtop_socket'?"),
    ({"http": {"adress": "127.0.0.1"}}, "http.adress: unknown key; did you mean 'address'?"),
    ({"dmi": {"max_rate": 0.5}}, "dmi.max_rate: unknown key; did you mean 'max_request_rate'?"),
    ({"control": {"allow_rebot": True}}, "control.allow_rebot: unknown key; did you mean 'allow_reboot'?"),
    ({"standalone": {"file": []}}, "standalone.file: unknown key; did you mean 'files'?"),
    ({"grpc_server": {"socket": "/x.sock"}}, "grpc_server.socket: unknown key; did you mean 'socket_path'?"),
    ({"sorce": {}}, "sorce: unknown section; did you mean 'source'?"),
])
def test_misspelt_keys_are_refused_with_a_suggestion(raw: dict[str, Any], expected: str) -> None:
    found = problems_of(raw)
    assert any(p.startswith(expected) for p in found), found


def test_an_unknown_key_without_a_close_match_lists_the_known_ones() -> None:
    (problem,) = problems_of({"source": {"colour": "blue"}})
    assert problem == "source.colour: unknown key (known: interval, jtop_socket)"


def test_mapper_framework_keys_we_do_not_use_are_accepted_with_a_warning() -> None:
    config = parse_config({"common": {"name": "m", "log_format": "json"}, "dev_init": {"mode": "configmap"}},
                          REPO, {})
    assert any(w.startswith("common.log_format:") for w in config.warnings), config.warnings
    assert any(w.startswith("dev_init:") for w in config.warnings), config.warnings
    assert parse_config({}, REPO, {}).warnings == ()


def test_quoted_numbers_follow_one_rule() -> None:
    """Numbers are YAML numbers everywhere; only common.http_port, a string in mapper-framework, takes quotes."""
    assert problems_of({"source": {"interval": "1.0"}}) == [
        "source.interval: expected a number, got the string '1.0' (write numbers without quotes)"]
    assert problems_of({"dmi": {"burst": "5"}}) == [
        "dmi.burst: expected an integer, got the string '5' (write numbers without quotes)"]
    assert problems_of({"mqtt": {"keepalive": "30"}}) != []
    assert parse_config({"common": {"http_port": "7777"}}, REPO, {}).common.http_port == 7777


def test_a_word_for_an_integer_gets_one_plain_message() -> None:
    assert problems_of({"dmi": {"burst": "seventy"}}) == ["dmi.burst: expected an integer, got 'seventy'"]
    assert problems_of({"common": {"http_port": "seventy"}}) == ["common.http_port: expected an integer, got 'seventy'"]


@pytest.mark.parametrize("key", ["source.interval", "dmi.max_request_rate", "dmi.call_deadline",
                                 "control.confirm_timeout"])
@pytest.mark.parametrize("value", [float("inf"), float("nan"), float("-inf")])
def test_infinite_and_nan_numbers_are_refused(key: str, value: float) -> None:
    section, name = key.split(".")
    found = problems_of({section: {name: value}})
    assert len(found) == 1 and found[0].startswith(f"{key}: expected a finite number"), found


@pytest.mark.parametrize("key", ["source.interval", "dmi.call_deadline", "control.confirm_timeout"])
def test_durations_too_long_for_a_timer_are_refused(key: str) -> None:
    section, name = key.split(".")
    assert problems_of({section: {name: 1e300}}) == [f"{key}: must be <= 3600.0, got 1e+300"]


@pytest.mark.parametrize("address", ["not-an-ip", "999.1.1.1", "localhost:7777", ""])
def test_http_address_must_be_an_ip_address(address: str) -> None:
    (problem,) = problems_of({"http": {"address": address}})
    assert problem.startswith("http.address: must be an IP address to listen on"), problem


def test_ipv6_addresses_are_accepted() -> None:
    assert parse_config({"http": {"address": "::"}}, REPO, {}).http.address == "::"


def run_mapper(config: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`python -m mapper run --config FILE`, expected to stop by itself."""
    return subprocess.run([sys.executable, "-m", "mapper", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_a_binary_config_file_is_one_message_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(128, 256)))
    result = run_mapper(config)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot read {config}: not UTF-8 text" in result.stderr


def test_the_http_port_in_use_is_one_message_and_exit_2(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(
        f"grpc_server: {{socket_path: {tmp_path}/j.sock}}\ncommon: {{http_port: {port}}}\n"
        f"http: {{address: 127.0.0.1}}\nsource: {{jtop_socket: {tmp_path}/jtop.sock}}\n"
        f"standalone: {{files: [{REPO}/device-model/jetson-model.yaml]}}\n", encoding="utf-8")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = run_mapper(config)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Address already in use" in result.stderr
