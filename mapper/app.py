"""Wires the mapper together from a validated config: source, runtime, DMI, MQTT and HTTP."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from mapper.config import MapperConfig
from mapper.control import Controller
from mapper.devices import DeviceRegistry
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.dmi.edgecore import EdgeCoreClient, MapperIdentity
from mapper.dmi.server import MapperServer
from mapper.http_api import ApiServer
from mapper.jtop_source import JtopSource
from mapper.kube import load_manifests
from mapper.metrics import MapperCollector
from mapper.model import Device, DeviceModel, DeviceRejected
from mapper.mqtt import MqttPublisher
from mapper.runtime import Runtime

log = logging.getLogger(__name__)


class MapperApp:
    """Everything one mapper process runs; start() and stop() are the only lifecycle."""

    def __init__(self, config: MapperConfig) -> None:
        self.config = config
        self.dmi_calls: Counter[tuple[str, str]] = Counter()
        self._calls_lock = threading.Lock()
        self.registry = DeviceRegistry(config.common.protocol)
        self.controller = Controller(None, config.control)
        self.registry.set_desired_validator(self.controller.validate)
        self.publisher = MqttPublisher(config.mqtt, config.node_name)
        self.runtime = Runtime(self.registry, self.controller, config.source.interval,
                               publisher=self.publisher, dmi_rate=config.dmi.max_request_rate,
                               device_topic=lambda ns, name: config.mqtt.device_topic_for(ns, name, config.node_name))
        self.source = JtopSource(config.source.jtop_socket, config.source.interval,
                                 on_sample=self._on_sample, on_availability=self.runtime.on_availability)
        self.controller.set_actuator(self.source)
        self.server = MapperServer(config.socket_path, self.runtime, on_call=self._count_call)
        self.edgecore: EdgeCoreClient | None = None
        if not config.standalone:
            identity = MapperIdentity(
                name=config.common.name, version=config.common.version, api_version=config.common.api_version,
                protocol=config.common.protocol, address=config.socket_path,
            )
            self.edgecore = EdgeCoreClient(
                config.common.edgecore_sock, identity, on_registered=self._registered,
                max_rate=config.dmi.max_request_rate, burst=config.dmi.burst, deadline=config.dmi.call_deadline,
                on_call=self._count_call,
            )
            self.runtime.set_reporter(self.edgecore)
        self.metrics_registry = CollectorRegistry()
        self.metrics_registry.register(MapperCollector(self.runtime, config.node_name, extra=self._sink_metrics))
        self.http = ApiServer(config.http, config.common.http_port, self.runtime, self.metrics_registry,
                              self.readiness)

    def _on_sample(self, snapshot: Mapping[str, Any]) -> None:
        """One sample feeds everything: readings, control, and the pre-rendered /metrics page."""
        self.runtime.on_sample(snapshot)
        stats = self.publisher.broker_stats().values()
        self.runtime.health.sink_errors["mqtt"] = sum(s.errors + s.dropped for s in stats)
        self.http.prerender()

    def _count_call(self, method: str, code: str) -> None:
        if code.startswith("SKIPPED"):  # nothing went on the wire
            return
        with self._calls_lock:
            self.dmi_calls[(method, code)] += 1

    def _registered(self, models: list[DeviceModel], devices: list[Device], errors: list[str]) -> None:
        for error in errors:
            log.error("EdgeCore handed over a device the mapper cannot convert: %s", error)
        log.info("registered with EdgeCore: %d devices, %d models", len(devices), len(models))
        self.runtime.replace_all(models, devices)

    def load_standalone(self) -> None:
        """Run the Device and DeviceModel files of standalone mode, as EdgeCore would hand them over."""
        try:
            pb_models, pb_devices = load_manifests(list(self.config.standalone_files))
        except DeviceRejected as exc:
            log.error("standalone files: %s", exc)
            return
        for pb_model in pb_models:
            try:
                self.runtime.upsert_model(model_from_pb(pb_model))
            except DeviceRejected as exc:
                log.error("standalone DeviceModel rejected: %s", exc)
        for pb_device in pb_devices:
            try:
                self.runtime.upsert_device(device_from_pb(pb_device), strict_desired=False)
            except DeviceRejected as exc:
                log.error("standalone Device rejected: %s", exc)

    def readiness(self) -> list[str]:
        """Why the mapper is not ready (empty when ready)."""
        problems = []
        if not self.runtime.health.source_up:
            problems.append(f"jtop source down: {self.runtime.health.source_reason}")
        if self.edgecore is not None and not self.edgecore.registered:
            problems.append(f"not registered with EdgeCore at {self.config.common.edgecore_sock}")
        return problems

    def _sink_metrics(self) -> Iterator[Metric]:
        node = self.config.node_name
        calls = CounterMetricFamily("jetson_mapper_dmi_requests", "DMI calls by method and gRPC code.",
                                    labels=["node", "method", "code"])
        with self._calls_lock:
            for (method, code), count in sorted(self.dmi_calls.items()):
                calls.add_metric([node, method, code], count)
        yield calls
        published = CounterMetricFamily("jetson_mapper_mqtt_published", "MQTT messages handed to a broker.",
                                        labels=["node", "broker"])
        dropped = CounterMetricFamily("jetson_mapper_mqtt_dropped", "MQTT messages dropped (queue full, QoS 0 "
                                      "while disconnected).", labels=["node", "broker"])
        queued = GaugeMetricFamily("jetson_mapper_mqtt_queued", "MQTT messages waiting for a broker.",
                                   labels=["node", "broker"])
        connected = GaugeMetricFamily("jetson_mapper_mqtt_connected", "1 while connected to the broker.",
                                      labels=["node", "broker"])
        for broker, stats in sorted(self.publisher.broker_stats().items()):
            published.add_metric([node, broker], stats.published)
            dropped.add_metric([node, broker], stats.dropped)
            queued.add_metric([node, broker], stats.queued)
            connected.add_metric([node, broker], 1.0 if stats.connected else 0.0)
        yield from (published, dropped, queued, connected)

    def start(self) -> None:
        """Start every part; a missing jtop service or EdgeCore only delays readiness."""
        self.http.start()
        try:
            self.server.start()
        except OSError as exc:
            if not self.config.standalone:
                raise
            log.error("mapper socket %s unavailable (%s); standalone mode runs without it",
                      self.config.socket_path, exc)
        self.source.start()
        self.runtime.start()
        if self.config.standalone:
            self.load_standalone()
        elif self.edgecore is not None:
            self.edgecore.start()
        log.info("jetson-mapper up: http://%s:%d/metrics, mapper socket %s, %s",
                 self.config.http.address, self.config.common.http_port, self.config.socket_path,
                 "standalone" if self.config.standalone else f"EdgeCore at {self.config.common.edgecore_sock}")

    def stop(self) -> None:
        """Stop every part, newest first."""
        if self.edgecore is not None:
            self.edgecore.stop()
        self.runtime.stop()
        self.source.stop()
        self.server.stop()
        self.publisher.close()
        self.http.stop()
