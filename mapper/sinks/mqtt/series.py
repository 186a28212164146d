"""The MQTT metric names from before the common jetson_mapper_sink_* families (dashboards and alerts use them)."""

from __future__ import annotations

from mapper.sinks.base import OwnSeries

MQTT_SERIES = OwnSeries(
    prefix="jetson_mapper_mqtt", target_label="broker",
    sent=("published", "MQTT messages handed to a broker."),
    dropped=("dropped", "MQTT messages dropped (queue full, QoS 0 while disconnected)."),
    queued=("queued", "MQTT messages waiting for a broker."),
    up=("connected", "1 while connected to the broker."),
)
