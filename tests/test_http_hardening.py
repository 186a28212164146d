"""The HTTP port under bad input: non-ASCII tokens, clients that reset, unknown REST objects."""

from __future__ import annotations

import logging
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import wait_until
from http_support import get, http_app, port_of

from mapper.app import MapperApp
from mapper.config import ConfigError, HttpConfig, parse_config

WRITE = "/api/v1/devicemethod/default/jetson-xavier/setFan/fan_profile/quiet"


@pytest.fixture(scope="module")
def plain_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MapperApp]:
    """One app with REST writes off for the tests that only read."""
    with http_app(tmp_path_factory.mktemp("plain")) as app:
        yield app


def writes_on(token_file: Path) -> HttpConfig:
    """REST writes enabled with the given token file."""
    return HttpConfig(address="127.0.0.1", rest_write_enabled=True, rest_write_token_file=str(token_file))


def test_a_non_ascii_bearer_token_is_refused_with_401(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "token").write_text("sekret\n", encoding="utf-8")
    with http_app(tmp_path, writes_on(tmp_path / "token")) as app:
        status, _, body = get(port_of(app), WRITE, {"Authorization": "Bearer göö".encode()})
    assert status == 401, body
    assert b"missing or wrong bearer token" in body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_non_ascii_token_file_works_and_other_tokens_are_refused(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("töken\n", encoding="utf-8")
    with http_app(tmp_path, writes_on(tmp_path / "token")) as app:
        port = port_of(app)
        wrong = get(port, WRITE, {"Authorization": b"Bearer sekret"})
        right = get(port, WRITE, {"Authorization": "Bearer töken".encode()})
    assert wrong[0] == 401, wrong
    assert right[0] == 200, right


@pytest.mark.parametrize("problem", ["missing", "empty", "unreadable"])
def test_the_token_file_is_checked_at_start_when_writes_are_on(tmp_path: Path, problem: str) -> None:
    token = tmp_path / "token"
    if problem == "empty":
        token.write_text("\n", encoding="utf-8")
    elif problem == "unreadable":
        token.mkdir()  # a directory reads like an unreadable file, also as root
    raw = {"http": {"rest_write_enabled": True, "rest_write_token_file": str(token)}}
    with pytest.raises(ConfigError) as error:
        parse_config(raw, tmp_path, {})
    (message,) = error.value.problems
    assert message.startswith(f"http.rest_write_token_file: REST writes are on but {token}"), message
    parse_config({"http": {"rest_write_token_file": str(token)}}, tmp_path, {})  # writes off: not needed


def reset_during_metrics(port: int) -> None:
    """Ask for /metrics, read the first bytes, then reset the connection (SO_LINGER 0)."""
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    client.connect(("127.0.0.1", port))
    client.sendall(b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n")
    client.recv(64)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


def test_a_client_that_resets_mid_scrape_is_one_debug_line(
    plain_app: MapperApp, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="mapper.http")
    for _ in range(5):
        reset_during_metrics(port_of(plain_app))
    wait_until(lambda: len([r for r in caplog.records if "went away" in r.getMessage()]) >= 5,
               "one debug line per reset", timeout=10)
    time.sleep(0.2)  # anything else the handlers log would be there by now
    stderr = capfd.readouterr().err
    assert "Traceback" not in stderr and "Traceback" not in caplog.text
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 5 and all(r.levelno == logging.DEBUG for r in gone)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(("path", "message"), [
    ("/api/v1/device/default/jetson-xavier/nosuch", "Get device data error: not found property nosuch"),
    ("/api/v1/device/default/nosuch/gpu_usage", "Get device data error: not found device default/nosuch"),
    ("/api/v1/meta/model/default/nosuch", "Get device error: not found device default/nosuch"),
    ("/api/v1/devicemethod/default/nosuch", "Get device method error: not found device default/nosuch"),
])
def test_rest_not_found_answers_404_in_the_error_shape(plain_app: MapperApp, path: str, message: str) -> None:
    status, headers, body = get(port_of(plain_app), path)
    assert status == 404
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert body.decode() == message + "\n"


@pytest.mark.parametrize(("path", "message"), [
    ("/api/v1/devicemethod/default/nosuch/setFan/fan_profile/quiet", "not found device default/nosuch"),
    ("/api/v1/devicemethod/default/jetson-xavier/reboot/fan_profile/quiet",
     "deviceMethod name reboot does not exist in device instance"),
    ("/api/v1/devicemethod/default/jetson-xavier/setFan/nvpmodel/15W",
     "deviceProperty nvpmodel to be written is not in the list defined by devicemethod"),
])
def test_writes_to_unknown_objects_answer_404(tmp_path: Path, path: str, message: str) -> None:
    (tmp_path / "token").write_text("sekret", encoding="utf-8")
    with http_app(tmp_path, writes_on(tmp_path / "token")) as app:
        status, _, body = get(port_of(app), path, {"Authorization": b"Bearer sekret"})
    assert (status, body.decode()) == (404, f"Write device data error: {message}\n")


def listen_backlog(server: socket.socket) -> int:
    """The accept-queue length the kernel grants a listening socket (struct tcp_info's tcpi_sacked for LISTEN)."""
    info = server.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("I", info, 28)[0])


def closed_by_server(client: socket.socket, within: float) -> bool:
    """Whether the server closes this connection within `within` seconds (we send nothing more)."""
    client.settimeout(within)
    try:
        return client.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_the_listen_backlog_takes_a_burst_of_scrapers(plain_app: MapperApp) -> None:
    assert listen_backlog(plain_app.http.socket) >= 128


def test_idle_and_slow_connections_time_out(tmp_path: Path) -> None:
    with http_app(tmp_path) as app:
        app.http.connection_timeout = 0.3
        idle = socket.create_connection(("127.0.0.1", port_of(app)))
        slow = socket.create_connection(("127.0.0.1", port_of(app)))
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: te")  # and never the rest
        try:
            assert closed_by_server(idle, within=5.0)
            assert closed_by_server(slow, within=5.0)
        finally:
            idle.close()
            slow.close()


def test_connections_beyond_the_cap_get_503_and_the_cap_frees_up(tmp_path: Path) -> None:
    with http_app(tmp_path) as app:
        app.http.connection_timeout = 0.5
        app.http.max_connections = 3
        held = [socket.create_connection(("127.0.0.1", port_of(app))) for _ in range(3)]
        try:
            wait_until(lambda: app.http.open_connections == 3, "three connections held")
            status, headers, body = get(port_of(app), "/healthz")
            assert (status, headers.get("retry-after")) == (503, "1"), body
            wait_until(lambda: app.http.open_connections == 0, "the idle connections to time out", timeout=10)
            assert get(port_of(app), "/healthz")[0] == 200
        finally:
            for client in held:
                client.close()
