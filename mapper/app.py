"""Wires the mapper together from a validated config: source, runtime, sinks, DMI and HTTP."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mapper.config import MapperConfig
from mapper.control.controller import Controller
from mapper.devices.model import Device, DeviceModel, DeviceRejected
from mapper.devices.registry import DeviceRegistry
from mapper.dmi.calls import CallCounter
from mapper.dmi.convert import device_from_pb, model_from_pb
from mapper.dmi.manifests import load_manifests
from mapper.dmi.pacing import DmiPacer
from mapper.http.rest import RestApi
from mapper.http.server import ApiServer
from mapper.pods.attributor import PodAttributor
from mapper.runtime import Runtime
from mapper.sinks.prometheus.collector import MapperCollector
from mapper.sinks.prometheus.exposition import Exposition, PrometheusSink
from mapper.sinks.registry import SinkContext, SinkSet
from mapper.sinks.twins import TwinSink
from mapper.source.jtop import JtopSource

if TYPE_CHECKING:  # gRPC loads only where the DMI runs: with EdgeCore, or standalone.serve_dmi
    from mapper.dmi.edgecore import EdgeCoreClient
    from mapper.dmi.server import MapperServer

log = logging.getLogger(__name__)


class MapperApp:
    """Everything one mapper process runs; start() and stop() are the only lifecycle."""

    def __init__(self, config: MapperConfig) -> None:
        self.config = config
        self.dmi_calls = CallCounter()
        self.registry = DeviceRegistry(config.common.protocol)
        self.controller = Controller(None, config.control)
        self.registry.set_desired_validator(self.controller.validate)
        self.edgecore: EdgeCoreClient | None = None
        if not config.standalone:
            from mapper.dmi.edgecore import EdgeCoreClient, MapperIdentity

            identity = MapperIdentity(
                name=config.common.name, version=config.common.version, api_version=config.common.api_version,
                protocol=config.common.protocol, address=config.socket_path,
            )
            self.edgecore = EdgeCoreClient(
                config.common.edgecore_sock, identity, on_registered=self._registered,
                max_rate=config.dmi.max_request_rate, burst=config.dmi.burst, deadline=config.dmi.call_deadline,
                on_call=self.dmi_calls.observe,
            )
        self.twins = TwinSink(DmiPacer(config.dmi.max_request_rate), self.edgecore, config.common.edgecore_sock)
        self.sinks = SinkSet(SinkContext(config, config.node_name), core=(self.twins,))
        self.registry.set_output_check(self.sinks.check)
        attributor = PodAttributor(config.pods) if config.pods.enabled else None
        self.runtime = Runtime(self.registry, self.controller, config.source.interval, sinks=self.sinks,
                               attributor=attributor)
        self.runtime.health.reports_ok = self.twins.pacer.reports_ok
        collector = MapperCollector(self.runtime, config.node_name, sinks=self.sinks, calls=self.dmi_calls)
        exposition = Exposition(collector, lambda: self.runtime.health.last_sample_mono)
        self.sinks.add(PrometheusSink(exposition))
        self.metrics_registry = exposition.registry
        self.source = JtopSource(config.source.jtop_socket, config.source.interval,
                                 on_sample=self.runtime.on_sample, on_availability=self.runtime.on_availability)
        self.controller.set_actuator(self.source)
        self.server: MapperServer | None = None
        if not config.standalone or config.standalone_dmi:
            from mapper.dmi.server import MapperServer

            self.server = MapperServer(config.socket_path, self.runtime, on_call=self.dmi_calls.observe,
                                       on_rebound=self._socket_rebound)
        self.http = ApiServer(config.http, config.common.http_port, RestApi(self.runtime, config.http), exposition,
                              self.readiness)

    def _registered(self, models: list[DeviceModel], devices: list[Device], errors: list[str]) -> None:
        for error in errors:
            log.error("EdgeCore handed over a device the mapper cannot convert: %s", error)
        log.info("registered with EdgeCore: %d devices, %d models", len(devices), len(models))
        self.runtime.replace_all(models, devices)

    def _socket_rebound(self) -> None:
        """The mapper socket was bound again: tell EdgeCore the address again (a restarted one forgot it)."""
        if self.edgecore is not None:
            self.edgecore.register_again()

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
        if self.server is not None and not self.config.standalone and (socket_problem := self.server.problem):
            problems.append(f"mapper socket {self.server.socket_path} missing ({socket_problem}); binding it again")
        return problems

    def start(self) -> None:
        """Start every part; a missing jtop service or EdgeCore only delays readiness."""
        self.http.start()
        try:
            if self.server is not None:
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
        socket = f"mapper socket {self.config.socket_path}" if self.server is not None else "no DMI socket"
        log.info("jetson-mapper up: http://%s:%d/metrics, %s, %s", self.config.http.address,
                 self.config.common.http_port, socket,
                 "standalone" if self.config.standalone else f"EdgeCore at {self.config.common.edgecore_sock}")

    def stop(self) -> None:
        """Stop every part, newest first."""
        if self.edgecore is not None:
            self.edgecore.stop()
        self.runtime.stop()
        self.source.stop()
        if self.server is not None:
            self.server.stop()
        self.sinks.close()
        self.http.stop()
