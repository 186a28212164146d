"""One HTTP server on the mapper's port: /metrics, /healthz, /readyz and the REST API routes."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import selectors
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mapper.config import HttpConfig
from mapper.http.rest import RestApi
from mapper.http.webconfig import BasicAuth, TlsContext, load_web_config
from mapper.sinks.prometheus.exposition import Exposition

log = logging.getLogger(__name__)

Route = tuple[re.Pattern[str], Callable[["Handler", list[str]], None]]
# A client that closed or reset its connection, or stopped reading: nothing to answer, nothing to fix here.
CLIENT_GONE = (ConnectionError, TimeoutError)
LISTEN_BACKLOG = 128  # connections the kernel queues before the accept loop takes them
CONNECTION_TIMEOUT = 10.0  # seconds a read or write may wait (mapper-framework: 10 s read and write timeouts)
MAX_CONNECTIONS = 64  # open connections, hence handler threads, at a time
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\n"
         b"Content-Length: 20\r\nConnection: close\r\n\r\ntoo many connections\n")


def _refuse(request: socket.socket) -> None:
    """Answer 503 without blocking the accept loop (a fresh socket's send buffer always takes these bytes)."""
    try:
        request.setblocking(False)
        request.send(_BUSY)
    except OSError:
        pass


class Handler(BaseHTTPRequestHandler):
    """Routes GET requests; the server object carries the shared state."""

    server: ApiServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; without TCP_NODELAY the body waits for the client's delayed ACK
    # (40 ms on Linux) on every keep-alive scrape.
    disable_nagle_algorithm = True
    # Headers and body of a page up to this size leave in one write when the request is done (one syscall, one
    # segment) instead of two unbuffered writes.
    wbufsize = 64 * 1024

    def setup(self) -> None:
        """Every read and write on the connection times out: an idle or stalled client frees its thread."""
        super().setup()
        self.connection.settimeout(self.server.connection_timeout)

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs at debug level only."""
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        """Dispatch on the path."""
        path = urlsplit(self.path).path
        for pattern, handler in self.server.routes:
            match = pattern.fullmatch(path)
            if match:
                if not self.server.admits(path, handler, self.header("Authorization")):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", "Basic")
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", "13")
                    self.end_headers()
                    self.wfile.write(b"Unauthorized\n")
                    return
                try:
                    handler(self, [unquote(g) for g in match.groups()])
                except CLIENT_GONE:
                    raise  # nobody to answer: the server logs it once, at debug level
                except Exception:  # a bad request must never take the server down
                    log.exception("GET %s failed", path)
                    self.text(500, "internal error\n")
                return
        self.text(404, f"404 page not found: {path}\n")

    def send(self, status: int, body: bytes, content_type: str) -> None:
        """Write one complete response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        correlation = self.headers.get("X-Correlation-ID")
        if correlation:
            self.send_header("X-Correlation-ID", correlation)
        self.end_headers()
        self.wfile.write(body)

    def text(self, status: int, message: str) -> None:
        """A plain-text answer, as Go's http.Error writes it."""
        self.send(status, message.encode(), "text/plain; charset=utf-8")

    def json(self, body: dict[str, Any]) -> None:
        """A 200 JSON answer."""
        self.send(200, json.dumps(body).encode(), "application/json")

    def header(self, name: str) -> str:
        """A request header, "" when absent."""
        return self.headers.get(name, "")

    def metrics(self, _: list[str]) -> None:
        """Prometheus exposition, text or OpenMetrics as the scraper asks."""
        body, content_type = self.server.exposition.page(self.headers.get("Accept", ""))
        self.send(200, body, content_type)

    def healthz(self, _: list[str]) -> None:
        """Liveness: the process answers."""
        self.text(200, "ok\n")

    def readyz(self, _: list[str]) -> None:
        """Readiness: samples flow and, with EdgeCore, the mapper is registered."""
        problems = self.server.readiness()
        self.text(200 if not problems else 503, ("ok" if not problems else "; ".join(problems)) + "\n")


OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # kubelet probes carry no credentials
OPERATIONS: list[Route] = [
    (re.compile("/metrics"), Handler.metrics),
    (re.compile("/healthz"), Handler.healthz),
    (re.compile("/readyz"), Handler.readyz),
]


class ApiServer(ThreadingHTTPServer):
    """The HTTP server with the page, the REST API and the readiness check it serves.

    A burst of scrapers waits in a listen backlog of LISTEN_BACKLOG (socketserver's default of 5 made the kernel
    drop SYNs, seen as 1-3 s retransmit delays); each connection has a thread, at most `max_connections` at a time
    (more are answered 503 at once), and a read or write that waits longer than `connection_timeout` ends it.
    """

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    connection_timeout = CONNECTION_TIMEOUT
    max_connections = MAX_CONNECTIONS

    def __init__(self, settings: HttpConfig, port: int, rest: RestApi, exposition: Exposition,
                 readiness: Callable[[], list[str]]) -> None:
        if ipaddress.ip_address(settings.address).version == 6:
            self.address_family = socket.AF_INET6
        super().__init__((settings.address, port), Handler, bind_and_activate=False)
        self.settings = settings
        self.rest = rest
        self.exposition = exposition
        self.readiness = readiness
        self.routes: list[Route] = [*OPERATIONS, *rest.routes()]
        web = load_web_config(Path(settings.web_config_file)) if settings.web_config_file else None
        self.tls = TlsContext(web.tls) if web is not None and web.tls is not None else None
        self.auth = BasicAuth(web.users) if web is not None and web.users else None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        self._count_lock = threading.Lock()
        self.open_connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a thread of its own, or answer 503 and close when `max_connections` are open."""
        with self._count_lock:
            admitted = self.open_connections < self.max_connections
            if admitted:
                self.open_connections += 1
        if not admitted:
            log.debug("client %s refused: %d connections open", client_address[0], self.max_connections)
            if self.tls is None:  # a TLS client could not read a plain answer
                _refuse(request)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """One connection's thread: the TLS handshake when configured, the requests; frees its place when done."""
        try:
            if self.tls is not None:
                request.settimeout(self.connection_timeout)
                request = self.tls.wrap(request)
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._count_lock:
                self.open_connections -= 1

    def admits(self, path: str, handler: Callable[..., None], authorization: str) -> bool:
        """Whether the web config's basic auth lets this request through: always for the kubelet's probes and
        for REST writes, which carry their own bearer token in the same header."""
        if self.auth is None or path in OPEN_PATHS or handler == self.rest.method_write:
            return True
        return self.auth.allows(authorization)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line per failed connection: debug for a client that went away, an error with traceback otherwise."""
        error = sys.exc_info()[1]
        if isinstance(error, CLIENT_GONE):
            log.debug("client %s went away: %s", client_address[0], error)
        elif isinstance(error, ssl.SSLError):  # scanners, clients without our CA or without a certificate
            log.debug("TLS with client %s failed: %s", client_address[0], error)
        else:
            log.exception("HTTP connection from %s failed", client_address[0])

    def start(self) -> None:
        """Listen and serve in a background thread; OSError says which address cannot be used."""
        host, port = self.settings.address, self.server_address[1]
        shown = f"[{host}]:{port}" if self.address_family == socket.AF_INET6 else f"{host}:{port}"
        try:
            self.server_bind()
            self.server_activate()
        except OSError as exc:
            self.server_close()
            raise OSError(exc.errno, f"cannot listen on {shown}: {exc.strerror or exc}") from exc
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Accept connections until stop(); sleeps in select without a timeout (socketserver's own loop wakes
        twice a second to look for a shutdown request)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_read, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self and not self._stopping.is_set():
                        self.handle_request()  # readable: accepts at once

    def stop(self) -> None:
        """Stop serving (when started) and close the socket."""
        if self._thread is not None:
            self._stopping.set()
            os.write(self._wake_write, b"x")
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()

    def server_close(self) -> None:
        """Close the listening socket and the loop's wake-up pipe."""
        super().server_close()
        for descriptor in (self._wake_read, self._wake_write):
            if descriptor >= 0:
                os.close(descriptor)
        self._wake_read = self._wake_write = -1
