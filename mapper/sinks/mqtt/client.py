"""MQTT publishing: one long-lived paho client per broker (the only module importing paho).

Delivery rules (details in docs/mqtt.md, bookkeeping in mapper/sinks/mqtt/delivery.py):
- QoS 1/2 messages wait in a per-broker queue of `queue_size` while the broker is unreachable; when the
  queue is full the OLDEST waiting message is dropped and counted. After reconnect they go out in order.
- At most INFLIGHT_WINDOW QoS 1/2 messages are handed to paho unacknowledged; paho keeps those across a
  reconnect and re-sends them (at-least-once: a message whose ack was lost may arrive twice).
- QoS 0 messages are dropped and counted while the broker is down (and when paho loses them with a
  broken socket).
`publish()` never blocks on the network and never raises: network work runs on background threads.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from mapper.devices.redact import redact
from mapper.sinks.mqtt.delivery import INFLIGHT_WINDOW, BrokerStats, DeliveryBook, Outgoing
from mapper.sinks.mqtt.format import canonical_address, normalise_address, topic_problem
from mapper.sinks.mqtt.settings import MqttSettings

LOG = logging.getLogger(__name__)
ONLINE = b"online"
OFFLINE = b"offline"


class _QuietClient(Client):
    """paho's client whose network thread sleeps up to a third of the keepalive instead of one second when nothing
    happens (a publish from another thread or socket traffic still wakes it at once; pings stay in time)."""

    loop_timeout = 1.0

    def loop_forever(self, timeout: float = 1.0, retry_first_connection: bool = False) -> MQTTErrorCode:
        """The network loop loop_start() runs, with this client's timeout."""
        return super().loop_forever(timeout=self.loop_timeout, retry_first_connection=retry_first_connection)


class _BrokerLink:
    """One broker: its paho client, its sender thread and its delivery book."""

    def __init__(
        self,
        address: str,
        host: str,
        port: int,
        tls: bool,
        settings: MqttSettings,
        node: str,
        clock: Callable[[], float],
    ) -> None:
        self.address = address
        self._settings = settings
        self._status_topic = settings.status_topic_for(node)
        self.book = DeliveryBook(settings.queue_size, clock)
        self._client = self._build_client(host, port, tls, node)
        self._sender = threading.Thread(target=self._send_loop, name=f"mqtt-send {address}", daemon=True)
        self._sender.start()
        self._client.connect_async(host, port, keepalive=settings.keepalive)
        self._client.loop_start()

    def _build_client(self, host: str, port: int, tls: bool, node: str) -> Client:
        """A configured, not yet connected paho client (may raise for unreadable TLS files)."""
        settings = self._settings
        client = _QuietClient(
            CallbackAPIVersion.VERSION2,
            client_id=f"{settings.client_id_prefix}-{node}-{zlib.crc32(self.address.encode()):08x}",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        client.loop_timeout = max(1.0, settings.keepalive / 3)
        client.max_inflight_messages_set(INFLIGHT_WINDOW + 12)  # room for status messages on top
        client.reconnect_delay_set(math.ceil(settings.backoff_initial), math.ceil(settings.backoff_max))
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if tls:
            files = settings.tls
            client.tls_set(
                ca_certs=files.ca_file if files else None,
                certfile=files.cert_file if files else None,
                keyfile=files.key_file if files else None,
            )
            client.tls_insecure_set(bool(files and files.insecure))
        if self._status_topic:
            client.will_set(self._status_topic, OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def record_error(self, message: str, *, always_log: bool = False) -> None:
        """Count an error; log the first of a streak at ERROR (repeats at DEBUG until reconnected)."""
        first = self.book.record_error(message)
        level = logging.ERROR if first or always_log else logging.DEBUG
        LOG.log(level, "MQTT broker %s: %s", self.address, message)

    def submit(self, message: Outgoing) -> None:
        """Queue a message for the sender thread; never blocks on I/O."""
        self.book.submit(message)

    def reject(self, problem: str) -> None:
        """Count a message that cannot be sent at all (bad topic or QoS)."""
        self.book.count_dropped()
        self.record_error(f"message dropped: {problem}", always_log=True)

    def _send_loop(self) -> None:
        """Hand waiting messages to paho while connected, keeping the unacknowledged window small."""
        while (message := self.book.next_to_send()) is not None:
            try:
                info = self._client.publish(message.topic, message.payload, message.qos, message.retain)
            except (ValueError, OSError) as error:
                self.book.count_dropped()
                self.record_error(f"publish to {message.topic!r} failed: {error}", always_log=True)
                continue
            # MQTT_ERR_NO_CONN for QoS 1/2: paho keeps the message and re-sends it after reconnect.
            self.book.record_handoff(message, info.mid, info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS, info)

    def _publish_status(self, payload: bytes) -> MQTTMessageInfo | None:
        """Publish the retained status (online/offline) if a status topic is configured."""
        if not self._status_topic:
            return None
        info = self._client.publish(self._status_topic, payload, qos=1, retain=True)
        self.book.record_status(info.mid)
        return info

    def _on_connect(
        self, _client: Client, _userdata: Any, _flags: ConnectFlags, reason: ReasonCode, _properties: Any
    ) -> None:
        """Broker answered CONNACK: on success announce online and let the sender drain the queue."""
        if reason.is_failure:
            self.book.mark_down()
            self.record_error(f"connection refused: {reason}")
            return
        LOG.info("MQTT broker %s: connected", self.address)
        self._publish_status(ONLINE)
        self.book.mark_connected()

    def _on_connect_fail(self, _client: Client, _userdata: Any) -> None:
        """TCP/TLS connection attempt failed; paho retries with backoff."""
        self.book.mark_down()
        self.record_error("cannot connect (broker unreachable or TLS failed); retrying with backoff")

    def _on_disconnect(
        self, _client: Client, _userdata: Any, _flags: DisconnectFlags, reason: ReasonCode, _properties: Any
    ) -> None:
        """Connection lost or closed: QoS 1/2 messages wait in the queue from now on."""
        if self.book.mark_down() and not self.book.stopping:
            self.record_error(f"disconnected ({reason}); reconnecting with backoff")

    def _on_publish(self, _client: Client, _userdata: Any, mid: int, _reason: ReasonCode, _properties: Any) -> None:
        """Broker acknowledged a QoS 1/2 message, or paho wrote a QoS 0 one to the socket."""
        self.book.record_ack(mid)

    def stats(self) -> BrokerStats:
        """A consistent snapshot of this broker's counters."""
        return self.book.stats()

    def close(self, timeout: float) -> None:
        """Flush for up to `timeout` s, publish retained offline, disconnect and stop the threads."""
        deadline = time.monotonic() + timeout
        connected = self.book.stop(timeout)
        self._sender.join(timeout=max(deadline - time.monotonic(), 0.1))
        if connected:
            try:
                info = self._publish_status(OFFLINE)
                if info is not None:
                    info.wait_for_publish(timeout=max(deadline - time.monotonic(), 0.1))
            except (RuntimeError, ValueError) as error:
                LOG.warning("MQTT broker %s: could not publish offline status: %s", self.address, error)
        self._client.disconnect()
        self._client.loop_stop()


class MqttPublisher:
    """Publishes to any number of brokers, one long-lived client each, created on first use."""

    def __init__(self, settings: MqttSettings, node: str, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._node = node
        self._clock = clock
        self._lock = threading.Lock()
        self._links: dict[str, _BrokerLink] = {}
        self._aliases: dict[str, str] = {}  # address as written -> canonical address
        self._broken: dict[str, BrokerStats] = {}  # unusable addresses -> their counters
        self._closed = False

    def publish(self, address: str, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Send (or queue) one message; never blocks on the network, never raises."""
        try:
            link = self._link(address)
        except Exception as error:  # the sampling loop must never see an MQTT failure
            self._count_broken(address, f"{type(error).__name__}: {error}")
            return
        if link is None:
            return
        try:
            problem = topic_problem(topic) or (None if qos in (0, 1, 2) else f"QoS {qos!r} is not 0, 1 or 2")
            if problem is None:
                link.submit(Outgoing(topic, bytes(payload), qos, bool(retain)))
        except Exception as error:
            problem = f"{type(error).__name__}: {error}"
        if problem is not None:
            link.reject(problem)

    def _link(self, address: str) -> _BrokerLink | None:
        """The broker link for `address`, created on first use; None (counted) when unusable or closed."""
        with self._lock:
            if self._closed:
                return None
            if address in self._broken:
                raise ValueError(self._broken[address].last_error)
            canonical = self._aliases.get(address)
            if canonical is None:
                host, port, tls = normalise_address(address)
                canonical = canonical_address(host, port, tls)
                if canonical not in self._links:
                    self._links[canonical] = _BrokerLink(
                        canonical, host, port, tls, self._settings, self._node, self._clock
                    )
                self._aliases[address] = canonical
            return self._links[canonical]

    def _count_broken(self, address: str, message: str) -> None:
        """Count a dropped message for an address that cannot be used; log the first time.

        Counted under the address as written with its credentials masked: it becomes the `broker` label.
        """
        shown, message = redact(address), redact(message)
        with self._lock:
            before = self._broken.get(address)
            if before is None:
                LOG.error("MQTT broker %r cannot be used, its messages are dropped: %s", shown, message)
                before = BrokerStats(False, 0, 0, 0, 0, message, self._clock())
            self._broken[address] = replace(before, dropped=before.dropped + 1, errors=before.errors + 1)

    def broker_stats(self) -> dict[str, BrokerStats]:
        """Counters per broker, keyed by canonical address (tcp://host:port, ssl://host:port) or, for an
        unusable address, as written with credentials masked (tcp://***@host:1883)."""
        with self._lock:
            links = list(self._links.values())
            result = {redact(address): stats for address, stats in self._broken.items()}
        result.update({link.address: link.stats() for link in links})
        return result

    def close(self, timeout: float = 2.0) -> None:
        """Publish retained "offline" to every broker, disconnect and stop all threads."""
        with self._lock:
            self._closed = True
            links = list(self._links.values())
        for link in links:
            link.close(timeout)
