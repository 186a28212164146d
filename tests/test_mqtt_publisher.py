"""MqttPublisher against a real mosquitto: delivery, status/last will, outage queue, drops, auth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import free_port, wait_until
from mosquitto import Mosquitto, Subscriber, broker_dir, mqtt_broker

from mapper.sinks.mqtt.client import MqttPublisher
from mapper.sinks.mqtt.delivery import BrokerStats
from mapper.sinks.mqtt.format import canonical_address, normalise_address, property_payload
from mapper.sinks.mqtt.settings import MqttSettings

__all__ = ["broker_dir", "mqtt_broker"]  # fixtures used by name

pytestmark = pytest.mark.slow
NODE = "edge-1"
STATUS = f"jetson-mapper/{NODE}/status"
FAST = MqttSettings(backoff_initial=1.0, backoff_max=2.0)


def stats_of(publisher: MqttPublisher, address: str) -> BrokerStats:
    """Counters of the broker at `address`."""
    return publisher.broker_stats()[canonical_address(*normalise_address(address))]


@pytest.fixture
def publisher() -> Iterator[MqttPublisher]:
    """A publisher with short reconnect backoff, closed after the test."""
    created = MqttPublisher(FAST, NODE)
    yield created
    created.close()


@pytest.fixture
def subscriber(mqtt_broker: Mosquitto) -> Iterator[Subscriber]:
    """A subscriber to every topic of the broker."""
    created = Subscriber(mqtt_broker.port)
    yield created
    created.close()


def test_every_property_arrives_as_typed_json(
    mqtt_broker: Mosquitto, subscriber: Subscriber, publisher: MqttPublisher
) -> None:
    values: dict[str, tuple[str | int | float | bool, str]] = {
        "gpu_usage": (42.5, "FLOAT"),
        "ram_used": (123456789, "INT"),
        "jetson_clocks": (True, "BOOLEAN"),
        "nvpmodel": ("MAXN", "STRING"),
    }
    for qos, (name, (value, type_)) in enumerate(values.items()):
        payload = property_payload("default", "jetson-1", name, value, type_, 1700000000.25)
        publisher.publish(mqtt_broker.address, f"jetson/default/jetson-1/{name}", payload, qos % 3, False)
    wait_until(lambda: len(subscriber.messages()) >= len(values) + 1, "all properties")
    received = {m.topic: json.loads(m.payload) for m in subscriber.messages() if m.topic != STATUS}
    assert set(received) == {f"jetson/default/jetson-1/{name}" for name in values}
    for name, (value, type_) in values.items():
        document = received[f"jetson/default/jetson-1/{name}"]
        assert document == {
            "device": "jetson-1",
            "namespace": "default",
            "property": name,
            "value": value,
            "type": type_,
            "timestamp": 1700000000250,
        }
        assert type(document["value"]) is type(value)
    wait_until(lambda: stats_of(publisher, mqtt_broker.address).published == len(values), "published count")
    stats = stats_of(publisher, mqtt_broker.address)
    assert (stats.connected, stats.queued, stats.dropped, stats.errors) == (True, 0, 0, 0)


def test_status_is_retained_online_then_offline_after_close(mqtt_broker: Mosquitto) -> None:
    publisher = MqttPublisher(FAST, NODE)
    try:
        publisher.publish(mqtt_broker.address, "jetson/x", b"1", 1, False)
        wait_until(lambda: stats_of(publisher, mqtt_broker.address).published == 1, "first message")
        late = Subscriber(mqtt_broker.port, STATUS)  # subscribes after the fact: sees the retained status
        wait_until(lambda: [m.payload for m in late.messages()] == [b"online"], "retained online")
        assert late.messages()[0].retain
    finally:
        publisher.close()
    wait_until(lambda: [m.payload for m in late.messages()] == [b"online", b"offline"], "offline on close")
    late.close()
    after = Subscriber(mqtt_broker.port, STATUS)
    wait_until(lambda: [m.payload for m in after.messages()] == [b"offline"], "retained offline")
    after.close()


DYING_PUBLISHER = """
import sys, time
from mapper.sinks.mqtt.client import MqttPublisher
from mapper.sinks.mqtt.settings import MqttSettings
publisher = MqttPublisher(MqttSettings(status_topic="jm/{node}/status"), node="dying")
publisher.publish(sys.argv[1], "jm/hello", b"hi", 1, False)
while next(iter(publisher.broker_stats().values())).published < 1:
    time.sleep(0.05)
print("ready", flush=True)
time.sleep(600)
"""


def test_last_will_marks_a_killed_publisher_offline(mqtt_broker: Mosquitto) -> None:
    watcher = Subscriber(mqtt_broker.port, "jm/dying/status")
    child = subprocess.Popen(
        [sys.executable, "-c", DYING_PUBLISHER, mqtt_broker.address], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        wait_until(lambda: [m.payload for m in watcher.messages()] == [b"online"], "online status")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        wait_until(lambda: [m.payload for m in watcher.messages()] == [b"online", b"offline"], "last will")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        watcher.close()


@pytest.fixture
def persistent_broker(broker_dir: Path) -> Iterator[Mosquitto]:
    """A broker that keeps sessions across a restart, so the test subscriber misses nothing."""
    broker = Mosquitto(broker_dir, persistence=True)
    broker.start()
    yield broker
    broker.stop()


def _sequence(subscriber: Subscriber, topic: str) -> list[int]:
    """Sequence numbers received on `topic`."""
    return [int(m.payload) for m in subscriber.messages(topic)]


def _outage(broker: Mosquitto, publisher: MqttPublisher) -> None:
    """Stop the broker and wait until the publisher noticed."""
    broker.stop()
    wait_until(lambda: not stats_of(publisher, broker.address).connected, "publisher to see the outage")


def test_qos1_messages_published_during_an_outage_arrive_after_restart(persistent_broker: Mosquitto) -> None:
    broker = persistent_broker
    watcher = Subscriber(broker.port, "seq", client_id="watcher", persistent=True)
    publisher = MqttPublisher(FAST, NODE)
    try:
        publisher.publish(broker.address, "seq", b"0", 1, False)
        wait_until(lambda: _sequence(watcher, "seq") == [0], "message before the outage")
        _outage(broker, publisher)
        for number in range(1, 11):
            publisher.publish(broker.address, "seq", str(number).encode(), 1, False)
        during = stats_of(publisher, broker.address)
        assert (during.connected, during.published, during.queued, during.dropped) == (False, 1, 10, 0)
        broker.start()
        wait_until(lambda: len(_sequence(watcher, "seq")) >= 11, "queued messages after restart")
        assert _sequence(watcher, "seq") == list(range(11))
        wait_until(lambda: stats_of(publisher, broker.address).published == 11, "acks after restart")
        after = stats_of(publisher, broker.address)
        assert (after.connected, after.queued, after.dropped) == (True, 0, 0)
        assert after.errors >= 1  # the disconnect itself is reported
    finally:
        publisher.close()
        watcher.close()


def test_a_full_queue_drops_the_oldest_and_qos0_is_dropped_during_an_outage(persistent_broker: Mosquitto) -> None:
    broker = persistent_broker
    watcher = Subscriber(broker.port, "#", client_id="watcher", persistent=True)
    publisher = MqttPublisher(MqttSettings(queue_size=5, backoff_initial=1.0, backoff_max=2.0), NODE)
    try:
        publisher.publish(broker.address, "warmup", b"0", 1, False)
        wait_until(lambda: stats_of(publisher, broker.address).published == 1, "connected publisher")
        _outage(broker, publisher)
        for number in range(8):
            publisher.publish(broker.address, "seq", str(number).encode(), 1, False)
        publisher.publish(broker.address, "fast", b"lost-1", 0, False)
        publisher.publish(broker.address, "fast", b"lost-2", 0, False)
        during = stats_of(publisher, broker.address)
        assert (during.queued, during.dropped) == (5, 3 + 2)
        broker.start()
        wait_until(lambda: len(_sequence(watcher, "seq")) >= 5, "surviving messages")
        assert _sequence(watcher, "seq") == [3, 4, 5, 6, 7]  # the three oldest were dropped
        wait_until(lambda: stats_of(publisher, broker.address).published == 1 + 5, "acks after restart")
        publisher.publish(broker.address, "fast", b"kept", 0, False)
        wait_until(lambda: watcher.messages("fast") != [], "QoS 0 after reconnect")
        assert [m.payload for m in watcher.messages("fast")] == [b"kept"]
        final = stats_of(publisher, broker.address)
        assert (final.queued, final.dropped, final.published) == (0, 5, 7)
    finally:
        publisher.close()
        watcher.close()


def test_username_and_password_from_settings_authenticate(broker_dir: Path) -> None:
    broker = Mosquitto(broker_dir, anonymous=False)
    broker.add_user("edge", "s3cret")
    broker.start()
    watcher = Subscriber(broker.port, "auth/#", username="edge", password="s3cret")
    good = MqttPublisher(MqttSettings(username="edge", password="s3cret"), "good")
    bad = MqttPublisher(MqttSettings(username="edge", password="wrong", backoff_initial=1, backoff_max=2), "bad")
    try:
        good.publish(broker.address, "auth/good", b"1", 1, False)
        bad.publish(broker.address, "auth/bad", b"1", 1, False)
        wait_until(lambda: watcher.messages("auth/good") != [], "authenticated message")
        wait_until(lambda: stats_of(bad, broker.address).errors >= 1, "refused connection counted")
        refused = stats_of(bad, broker.address)
        assert not refused.connected and refused.queued == 1
        assert "refused" in refused.last_error
        assert watcher.messages("auth/bad") == []
    finally:
        good.close()
        bad.close()
        watcher.close()
        broker.stop()


def test_dead_or_malformed_addresses_never_block_or_raise(caplog: pytest.LogCaptureFixture) -> None:
    publisher = MqttPublisher(MqttSettings(queue_size=2, backoff_initial=1, backoff_max=2), NODE)
    closed_port = f"tcp://127.0.0.1:{free_port()}"
    addresses = [closed_port, "tcp://no-such-broker.invalid:1883", "tcp://127.0.0.1:notaport", "ftp://host"]

    def publish_everything() -> None:
        for _ in range(5):
            for address in addresses:
                publisher.publish(address, "t", b"x", 1, False)
            publisher.publish(closed_port, "bad/+/topic", b"x", 1, False)
        publisher.publish(closed_port, "t", "not bytes", 1, False)  # type: ignore[arg-type]
        publisher.publish(closed_port, "t", b"x", 7, False)

    try:
        worker = threading.Thread(target=publish_everything)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "publish() blocked"
        wait_until(lambda: stats_of(publisher, closed_port).errors >= 1, "connection failure counted")
        stats = publisher.broker_stats()
        dead = stats[canonical_address("127.0.0.1", int(closed_port.rsplit(":", 1)[1]), False)]
        assert (dead.connected, dead.queued) == (False, 2)
        assert dead.dropped == 3 + 5 + 2  # 3 oldest of 5 queued, 5 wildcard topics, a str payload, a bad QoS
        assert not any("not bytes" in key or "closed" in key for key in stats)
        for malformed in ("tcp://127.0.0.1:notaport", "ftp://host"):
            assert (stats[malformed].dropped, stats[malformed].errors) == (5, 5)
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert any("notaport" in e and "port" in e for e in errors)
        assert any("ftp" in e and "scheme" in e for e in errors)
        assert sum("notaport" in e for e in errors) == 1  # logged once, counted every time
    finally:
        publisher.close(timeout=0.5)
