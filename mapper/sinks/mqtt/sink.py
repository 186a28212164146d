"""The MQTT sink: each property's pushMethod.mqtt every reportCycle, and the optional all-properties topic."""

from __future__ import annotations

from collections.abc import Sequence

from mapper.devices.registry import RunningDevice
from mapper.sinks.base import Delivery, Route, Sink, SinkStats
from mapper.sinks.mqtt.client import MqttPublisher
from mapper.sinks.mqtt.format import device_payload, property_payload
from mapper.sinks.mqtt.settings import MqttSettings
from mapper.sinks.registry import SinkContext

DEVICE_ROUTE = "device"
PROPERTY_ROUTE = "property:"


class MqttSink(Sink):
    """Publishes through one long-lived client per broker (MqttPublisher)."""

    name = "mqtt"

    def __init__(self, publisher: MqttPublisher, settings: MqttSettings, node: str) -> None:
        self.publisher = publisher
        self._settings = settings
        self._node = node

    def routes(self, running: RunningDevice) -> Sequence[Route]:
        """One route per property with pushMethod.mqtt; the device topic, when configured, at the shortest cycle."""
        device = running.device
        routes = [Route(PROPERTY_ROUTE + prop.name, prop.report_cycle, (prop,)) for prop in running.properties
                  if (pushed := device.property(prop.name)) is not None and pushed.push_method == "mqtt"]
        topic = self._settings.device_topic_for(device.namespace, device.name, self._node)
        if topic is not None and routes:
            routes.append(Route(DEVICE_ROUTE, min(p.report_cycle for p in running.properties), running.properties))
        return routes

    def deliver(self, delivery: Delivery) -> None:
        """Publish one property to its own topic, or all of them to the device topic on the first broker."""
        device = delivery.device.device
        if delivery.route.key == DEVICE_ROUTE:
            topic = self._settings.device_topic_for(device.namespace, device.name, self._node)
            first = next(p.mqtt for p in device.properties if p.push_method == "mqtt" and p.mqtt is not None)
            values = {prop.name: (value, prop.binding.type) for prop, value in delivery.values}
            payload = device_payload(device.namespace, device.name, values, delivery.timestamp)
            if topic is not None:
                self.publisher.publish(first.address, topic, payload, first.qos, False)
            return
        for prop, value in delivery.values:
            pushed = device.property(prop.name)
            if pushed is None or pushed.mqtt is None or pushed.push_method != "mqtt":
                continue
            payload = property_payload(device.namespace, device.name, prop.name, value, prop.binding.type,
                                       delivery.timestamp)
            self.publisher.publish(pushed.mqtt.address, pushed.mqtt.topic, payload, pushed.mqtt.qos,
                                   pushed.mqtt.retained)

    def stats(self) -> Sequence[SinkStats]:
        """Counters per broker; errors (refused connections, failed publishes) count as failed."""
        return [SinkStats(broker, s.published, s.errors, s.dropped, s.queued, s.connected)
                for broker, s in sorted(self.publisher.broker_stats().items())]

    def close(self) -> None:
        """Publish the retained offline status, flush briefly and disconnect from every broker."""
        self.publisher.close()


def build(context: SinkContext) -> MqttSink:
    """The MQTT sink of a mapper, from the `mqtt:` config section."""
    settings = context.config.mqtt
    return MqttSink(MqttPublisher(settings, context.node), settings, context.node)
