"""One HTTP server: /metrics, /healthz, /readyz and the mapper-framework REST API."""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from mapper.config import HttpConfig
from mapper.runtime import Runtime
from mapper.values import format_twin

log = logging.getLogger(__name__)

API = "/api/v1"
EXPOSITION_MAX_AGE = 1.0  # seconds a rendered /metrics page is reused while no new sample arrived
PRERENDER_FOR = 300.0  # keep pre-rendering a format for this long after its last scrape
SEGMENT = r"([^/]+)"
Route = tuple[re.Pattern[str], Callable[["Handler", list[str]], None]]


def _base(status: int) -> dict[str, Any]:
    """The mapper-framework BaseResponse fields."""
    stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    return {"apiVersion": "v1", "statusCode": status, "timeStamp": stamp}


class Handler(BaseHTTPRequestHandler):
    """Routes GET requests; the server object carries the shared state."""

    server: ApiServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; without TCP_NODELAY the body waits for the client's delayed ACK
    # (40 ms on Linux) on every keep-alive scrape.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Access logs at debug level only."""
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        """Dispatch on the path."""
        path = urlsplit(self.path).path
        for pattern, handler in ROUTES:
            match = pattern.fullmatch(path)
            if match:
                try:
                    handler(self, [unquote(g) for g in match.groups()])
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

    # handlers
    def metrics(self, _: list[str]) -> None:
        """Prometheus exposition, text or OpenMetrics as the scraper asks."""
        encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
        self.send(200, self.server.exposition(encoder, content_type), content_type)

    def healthz(self, _: list[str]) -> None:
        """Liveness: the process answers."""
        self.text(200, "ok\n")

    def readyz(self, _: list[str]) -> None:
        """Readiness: samples flow and, with EdgeCore, the mapper is registered."""
        problems = self.server.readiness()
        self.text(200 if not problems else 503, ("ok" if not problems else "; ".join(problems)) + "\n")

    def ping(self, _: list[str]) -> None:
        """mapper-framework ping."""
        self.json({**_base(200), "Message": "This is v1 API, the server is running normally."})

    def device_read(self, parts: list[str]) -> None:
        """mapper-framework device read: the latest value of one property."""
        namespace, name, prop_name = parts
        runtime = self.server.runtime
        running = runtime.registry.device(namespace, name)
        prop = running.bound(prop_name) if running else None
        if running is None or prop is None:
            missing = f"not found device {namespace}/{name}" if running is None else f"not found property {prop_name}"
            self.text(500, f"Get device data error: {missing}\n")
            return
        value = runtime.value(prop)
        if value is None:
            self.text(500, f"Get device data error: no reading {prop.binding.reading} on this board now\n")
            return
        self.json({**_base(200), "Data": {
            "DeviceName": name, "PropertyName": prop_name, "Namespace": namespace,
            "Value": format_twin(value, prop.binding.type), "Type": prop.binding.type,
            "TimeStamp": int(time.time() * 1000),
        }})

    def meta_model(self, parts: list[str]) -> None:
        """mapper-framework meta: the DeviceModel of a device."""
        namespace, name = parts
        running = self.server.runtime.registry.device(namespace, name)
        if running is None:
            self.text(500, f"Get device error: not found device {namespace}/{name}\n")
            return
        model = running.model
        properties = [{k: v for k, v in {
            "name": p.name, "dataType": p.type, "description": p.description, "accessMode": p.access_mode,
            "minimum": p.minimum, "maximum": p.maximum, "unit": p.unit,
        }.items() if v} for p in model.properties]
        self.json({**_base(200), "id": f"{model.namespace}/{model.name}", "name": model.name,
                   "namespace": model.namespace, "properties": properties})

    def method_list(self, parts: list[str]) -> None:
        """mapper-framework device methods of a device."""
        namespace, name = parts
        running = self.server.runtime.registry.device(namespace, name)
        if running is None:
            self.text(500, f"Get device method error: not found device {namespace}/{name}\n")
            return
        methods = []
        for method in running.device.methods:
            params = []
            for prop_name in method.property_names:
                prop = running.bound(prop_name)
                params.append({"PropertyName": prop_name, "ValueType": prop.binding.type if prop else ""})
            methods.append({"Name": method.name, "Parameters": params,
                            "Path": f"{API}/devicemethod/{namespace}/{name}/{method.name}/{{propertyName}}/{{data}}"})
        self.json({**_base(200), "Data": {"Methods": methods}})

    def method_write(self, parts: list[str]) -> None:
        """mapper-framework device write, off unless enabled, then only with the bearer token."""
        namespace, name, method_name, prop_name, data = parts
        refusal = self.server.write_refusal(self.headers.get("Authorization", ""))
        if refusal is not None:
            self.text(refusal[0], f"Write device data error: {refusal[1]}\n")
            return
        error = self.server.write(namespace, name, method_name, prop_name, data)
        if error:
            self.text(500, f"Write device data error: {error}\n")
            return
        self.json({**_base(200), "Message": f"Write data {data} to device {namespace}/{name} successfully."})


ROUTES: list[Route] = [
    (re.compile("/metrics"), Handler.metrics),
    (re.compile("/healthz"), Handler.healthz),
    (re.compile("/readyz"), Handler.readyz),
    (re.compile(f"{API}/ping"), Handler.ping),
    (re.compile(f"{API}/device/{SEGMENT}/{SEGMENT}/{SEGMENT}"), Handler.device_read),
    (re.compile(f"{API}/meta/model/{SEGMENT}/{SEGMENT}"), Handler.meta_model),
    (re.compile(f"{API}/devicemethod/{SEGMENT}/{SEGMENT}"), Handler.method_list),
    (re.compile(f"{API}/devicemethod/{SEGMENT}/{SEGMENT}/{SEGMENT}/{SEGMENT}/{SEGMENT}"), Handler.method_write),
]


class ApiServer(ThreadingHTTPServer):
    """The HTTP server with the runtime, registry and write policy it serves."""

    daemon_threads = True

    def __init__(self, settings: HttpConfig, port: int, runtime: Runtime, registry: CollectorRegistry,
                 readiness: Callable[[], list[str]]) -> None:
        super().__init__((settings.address, port), Handler)
        self.settings = settings
        self.runtime = runtime
        self.registry = registry
        self.readiness = readiness
        self._thread: threading.Thread | None = None
        self._cache_lock = threading.Lock()
        self._cache: dict[str, tuple[float, float, bytes]] = {}
        self._wanted: dict[str, tuple[Callable[[CollectorRegistry], bytes], float]] = {}

    def exposition(self, encoder: Callable[[CollectorRegistry], bytes], content_type: str) -> bytes:
        """The encoded metrics page: pre-rendered for the current sample, else rendered now (at most once a second)."""
        sample = self.runtime.health.last_sample_mono
        now = time.monotonic()
        with self._cache_lock:
            self._wanted[content_type] = (encoder, now)
            cached = self._cache.get(content_type)
            if cached is not None and cached[0] == sample and now - cached[1] < EXPOSITION_MAX_AGE:
                return cached[2]
        return self._render(encoder, content_type, sample, now)

    def _render(self, encoder: Callable[[CollectorRegistry], bytes], content_type: str, sample: float,
                now: float) -> bytes:
        body = encoder(self.registry)
        with self._cache_lock:
            self._cache[content_type] = (sample, now, body)
        return body

    def prerender(self) -> None:
        """Render the page for a new sample in the sampling thread, for the formats scraped lately."""
        now = time.monotonic()
        with self._cache_lock:
            wanted = [(t, e) for t, (e, at) in self._wanted.items() if now - at < PRERENDER_FOR]
        for content_type, encoder in wanted:
            self._render(encoder, content_type, self.runtime.health.last_sample_mono, now)

    def write_refusal(self, authorization: str) -> tuple[int, str] | None:
        """Why a REST write is not allowed, or None."""
        if not self.settings.rest_write_enabled:
            return 403, "REST writes are disabled; set http.rest_write_enabled: true and mount a token file"
        try:
            token = Path(self.settings.rest_write_token_file).read_text(encoding="utf-8").strip()
        except OSError:
            return 403, f"REST writes need a token file at {self.settings.rest_write_token_file}"
        given = authorization.removeprefix("Bearer ").strip()
        if not token or not authorization.startswith("Bearer ") or not hmac.compare_digest(given, token):
            return 401, "missing or wrong bearer token"
        return None

    def write(self, namespace: str, name: str, method_name: str, prop_name: str, data: str) -> str | None:
        """Validate a write like the Go framework, then hand it to the controller; return an error or None."""
        running = self.runtime.registry.device(namespace, name)
        if running is None:
            return f"not found device {namespace}/{name}"
        method = next((m for m in running.device.methods if m.name == method_name), None)
        if method is None:
            return f"deviceMethod name {method_name} does not exist in device instance"
        if prop_name not in method.property_names:
            return f"deviceProperty {prop_name} to be written is not in the list defined by devicemethod"
        try:
            self.runtime.controller.write(running, prop_name, data)
        except ValueError as exc:
            return str(exc)
        return None

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
