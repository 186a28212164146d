"""The mapper's HTTP port in-process: a MapperApp with the bundled Device files, no jtop source, its real server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from common import free_port

from mapper.app import MapperApp
from mapper.config import HttpConfig, MapperConfig

REPO = Path(__file__).resolve().parents[1]
DEVICE_FILES = (REPO / "device-model" / "jetson-model.yaml", REPO / "device-model" / "jetson-xavier.yaml")


@contextmanager
def http_app(workdir: Path, http: HttpConfig | None = None,
             files: tuple[Path, ...] = DEVICE_FILES) -> Iterator[MapperApp]:
    """A MapperApp serving HTTP on a free loopback port with the bundled devices loaded (no samples)."""
    config = MapperConfig(socket_path=str(workdir / "jetson.sock"), standalone_files=files,
                          http=http or HttpConfig(address="127.0.0.1"), node_name="test-node")
    config = replace(config, common=replace(config.common, http_port=free_port()))
    app = MapperApp(config)
    app.http.start()
    app.load_standalone()
    try:
        yield app
    finally:
        app.http.stop()
        app.sinks.close()


def port_of(app: MapperApp) -> int:
    """The HTTP port the app listens on."""
    return int(app.http.server_address[1])


def raw_request(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP/1.1 request (Connection: close) and read the whole answer: (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as client:
        client.sendall(request)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


def get(port: int, path: str, headers: dict[str, bytes] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET `path` with raw header bytes (non-ASCII values are sent as given)."""
    lines = [f"GET {path} HTTP/1.1".encode(), b"Host: test", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in (headers or {}).items()]
    return raw_request(port, b"\r\n".join(lines) + b"\r\n\r\n")
