"""The mapper-framework REST API: ping, device reads, the device model, device methods and guarded writes.

Response shapes and error texts follow the Go framework (plain-text errors, JSON BaseResponse answers); unlike it,
a device, property or method that does not exist is answered 404 instead of 500.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from mapper.config import HttpConfig
from mapper.control.controller import Controller
from mapper.devices.registry import BoundProperty, DeviceRegistry
from mapper.devices.values import Value, format_twin

API = "/api/v1"
SEGMENT = r"([^/]+)"
# mapper-framework answers every REST error with 500; objects that do not exist get 404 here, same plain-text body.
NOT_FOUND = 404


class Reply(Protocol):
    """How a REST handler answers (the HTTP request handler implements it)."""

    def text(self, status: int, message: str) -> None:
        """A plain-text answer, as Go's http.Error writes it."""

    def json(self, body: dict[str, Any]) -> None:
        """A 200 JSON answer."""

    def header(self, name: str) -> str:
        """A request header, "" when absent."""


class DeviceAccess(Protocol):
    """What the REST API reads and writes: the runtime's devices, values and controller."""

    registry: DeviceRegistry
    controller: Controller

    def value(self, prop: BoundProperty) -> Value | None:
        """The typed value of a property from the latest readings."""


RestHandler = Callable[[Reply, list[str]], None]


def _base(status: int) -> dict[str, Any]:
    """The mapper-framework BaseResponse fields."""
    stamp = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    return {"apiVersion": "v1", "statusCode": status, "timeStamp": stamp}


class RestApi:
    """The REST handlers over one runtime, with the write policy of the http config section."""

    def __init__(self, runtime: DeviceAccess, settings: HttpConfig) -> None:
        self.runtime = runtime
        self.settings = settings

    def routes(self) -> list[tuple[re.Pattern[str], RestHandler]]:
        """Path patterns and their handlers; captured segments are passed on, URL-decoded."""
        return [
            (re.compile(f"{API}/ping"), self.ping),
            (re.compile(f"{API}/device/{SEGMENT}/{SEGMENT}/{SEGMENT}"), self.device_read),
            (re.compile(f"{API}/meta/model/{SEGMENT}/{SEGMENT}"), self.meta_model),
            (re.compile(f"{API}/devicemethod/{SEGMENT}/{SEGMENT}"), self.method_list),
            (re.compile(f"{API}/devicemethod/{SEGMENT}/{SEGMENT}/{SEGMENT}/{SEGMENT}/{SEGMENT}"), self.method_write),
        ]

    def ping(self, reply: Reply, _: list[str]) -> None:
        """mapper-framework ping."""
        reply.json({**_base(200), "Message": "This is v1 API, the server is running normally."})

    def device_read(self, reply: Reply, parts: list[str]) -> None:
        """mapper-framework device read: the latest value of one property."""
        namespace, name, prop_name = parts
        running = self.runtime.registry.device(namespace, name)
        prop = running.bound(prop_name) if running else None
        if running is None or prop is None:
            missing = f"not found device {namespace}/{name}" if running is None else f"not found property {prop_name}"
            reply.text(NOT_FOUND, f"Get device data error: {missing}\n")
            return
        value = self.runtime.value(prop)
        if value is None:
            reply.text(500, f"Get device data error: no reading {prop.binding.reading} on this board now\n")
            return
        reply.json({**_base(200), "Data": {
            "DeviceName": name, "PropertyName": prop_name, "Namespace": namespace,
            "Value": format_twin(value, prop.binding.type), "Type": prop.binding.type,
            "TimeStamp": int(time.time() * 1000),
        }})

    def meta_model(self, reply: Reply, parts: list[str]) -> None:
        """mapper-framework meta: the DeviceModel of a device."""
        namespace, name = parts
        running = self.runtime.registry.device(namespace, name)
        if running is None:
            reply.text(NOT_FOUND, f"Get device error: not found device {namespace}/{name}\n")
            return
        model = running.model
        properties = [{k: v for k, v in {
            "name": p.name, "dataType": p.type, "description": p.description, "accessMode": p.access_mode,
            "minimum": p.minimum, "maximum": p.maximum, "unit": p.unit,
        }.items() if v} for p in model.properties]
        reply.json({**_base(200), "id": f"{model.namespace}/{model.name}", "name": model.name,
                    "namespace": model.namespace, "properties": properties})

    def method_list(self, reply: Reply, parts: list[str]) -> None:
        """mapper-framework device methods of a device."""
        namespace, name = parts
        running = self.runtime.registry.device(namespace, name)
        if running is None:
            reply.text(NOT_FOUND, f"Get device method error: not found device {namespace}/{name}\n")
            return
        methods = []
        for method in running.device.methods:
            params = []
            for prop_name in method.property_names:
                prop = running.bound(prop_name)
                params.append({"PropertyName": prop_name, "ValueType": prop.binding.type if prop else ""})
            methods.append({"Name": method.name, "Parameters": params,
                            "Path": f"{API}/devicemethod/{namespace}/{name}/{method.name}/{{propertyName}}/{{data}}"})
        reply.json({**_base(200), "Data": {"Methods": methods}})

    def method_write(self, reply: Reply, parts: list[str]) -> None:
        """mapper-framework device write, off unless enabled, then only with the bearer token."""
        namespace, name, method_name, prop_name, data = parts
        refusal = self.write_refusal(reply.header("Authorization"))
        if refusal is not None:
            reply.text(refusal[0], f"Write device data error: {refusal[1]}\n")
            return
        error = self.write(namespace, name, method_name, prop_name, data)
        if error:
            reply.text(error[0], f"Write device data error: {error[1]}\n")
            return
        reply.json({**_base(200), "Message": f"Write data {data} to device {namespace}/{name} successfully."})

    def write_refusal(self, authorization: str) -> tuple[int, str] | None:
        """Why a REST write is not allowed, or None.

        Tokens are compared as bytes: the header as it arrived (HTTP headers are read as Latin-1, so this gives the
        client's bytes back) against the token file's UTF-8 bytes, so any non-ASCII token is simply wrong or right.
        """
        if not self.settings.rest_write_enabled:
            return 403, "REST writes are disabled; set http.rest_write_enabled: true and mount a token file"
        try:
            token = Path(self.settings.rest_write_token_file).read_bytes().strip()
        except OSError:
            return 403, f"REST writes need a token file at {self.settings.rest_write_token_file}"
        if not token or not authorization.startswith("Bearer "):
            return 401, "missing or wrong bearer token"
        given = authorization.removeprefix("Bearer ").strip().encode("latin-1", errors="replace")
        if not hmac.compare_digest(given, token):
            return 401, "missing or wrong bearer token"
        return None

    def write(self, namespace: str, name: str, method_name: str, prop_name: str,
              data: str) -> tuple[int, str] | None:
        """Validate a write like the Go framework, then hand it to the controller; (status, error) or None."""
        running = self.runtime.registry.device(namespace, name)
        if running is None:
            return NOT_FOUND, f"not found device {namespace}/{name}"
        method = next((m for m in running.device.methods if m.name == method_name), None)
        if method is None:
            return NOT_FOUND, f"deviceMethod name {method_name} does not exist in device instance"
        if prop_name not in method.property_names:
            return NOT_FOUND, f"deviceProperty {prop_name} to be written is not in the list defined by devicemethod"
        try:
            self.runtime.controller.write(running, prop_name, data)
        except ValueError as exc:
            return 500, str(exc)
        return None
