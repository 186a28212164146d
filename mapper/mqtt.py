"""MQTT publishing: one long-lived paho client per broker, a bounded outage queue, exact counters.

Delivery rules (details in docs/mqtt.md):
- QoS 1/2 messages wait in a per-broker queue of `queue_size` while the broker is unreachable; when the
  queue is full the OLDEST waiting message is dropped and counted. After reconnect they go out in order.
- At most INFLIGHT_WINDOW QoS 1/2 messages are handed to paho unacknowledged; paho keeps those across a
  reconnect and re-sends them (at-least-once: a message whose ack was lost may arrive twice).
- QoS 0 messages are sent only while connected; otherwise (or when paho loses them with a broken socket)
  they are dropped and counted.
`publish()` never blocks on the network and never raises: network work runs on background threads.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from mapper.mqtt_format import (
    PropertyValue,
    canonical_address,
    device_payload,
    normalise_address,
    property_payload,
    topic_problem,
)
from mapper.mqtt_settings import MqttSettings

__all__ = [
    "BrokerStats",
    "MqttPublisher",
    "PropertyValue",
    "device_payload",
    "normalise_address",
    "property_payload",
]

LOG = logging.getLogger(__name__)
INFLIGHT_WINDOW = 20
ONLINE = b"online"
OFFLINE = b"offline"


@dataclass(frozen=True)
class BrokerStats:
    """Counters of one broker: messages acknowledged (QoS 0: written), waiting, dropped; errors seen."""

    connected: bool
    published: int
    queued: int
    dropped: int
    errors: int
    last_error: str = ""
    last_error_at: float | None = None


@dataclass(frozen=True)
class _Outgoing:
    """One message waiting for its broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class _BrokerLink:
    """One broker: its paho client, outage queue, sender thread and counters."""

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
        self._clock = clock
        self._status_topic = settings.status_topic_for(node)
        self._cond = threading.Condition()
        self._waiting: deque[_Outgoing] = deque()
        self._unacked: set[int] = set()  # mids of QoS>0 data messages handed to paho
        self._early_acks: set[int] = set()  # acks that arrived before their mid was registered
        self._status_mids: set[int] = set()
        self._qos0: dict[int, MQTTMessageInfo] = {}  # QoS 0 mids handed to paho, not yet written
        self._connected = False
        self._down = False  # a connection attempt failed or was lost (not just "still connecting")
        self._stopping = False
        self._published = self._dropped = self._errors = 0
        self._last_error = ""
        self._last_error_at: float | None = None
        self._error_logged = False
        self._client = self._build_client(host, port, tls, node)
        self._sender = threading.Thread(target=self._send_loop, name=f"mqtt-send {address}", daemon=True)
        self._sender.start()
        self._client.connect_async(host, port, keepalive=settings.keepalive)
        self._client.loop_start()

    def _build_client(self, host: str, port: int, tls: bool, node: str) -> Client:
        """A configured, not yet connected paho client (may raise for unreadable TLS files)."""
        settings = self._settings
        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{settings.client_id_prefix}-{node}-{zlib.crc32(self.address.encode()):08x}",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        client.max_inflight_messages_set(INFLIGHT_WINDOW + 12)
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
        with self._cond:
            self._errors += 1
            self._last_error, self._last_error_at = message, self._clock()
            first = not self._error_logged
            self._error_logged = True
        LOG.log(
            logging.ERROR if first or always_log else logging.DEBUG,
            "MQTT broker %s: %s",
            self.address,
            message,
        )

    def submit(self, message: _Outgoing) -> None:
        """Queue a message for the sender thread; never blocks on I/O. Full queue: drop the oldest."""
        with self._cond:
            if self._stopping or (self._down and (message.qos == 0 or self._settings.queue_size == 0)):
                self._dropped += 1
                return
            self._waiting.append(message)
            while len(self._waiting) > max(self._settings.queue_size, 1):
                self._waiting.popleft()
                self._dropped += 1
            self._cond.notify_all()

    def reject(self, problem: str) -> None:
        """Count a message that cannot be sent at all (bad topic or QoS)."""
        with self._cond:
            self._dropped += 1
        self.record_error(f"message dropped: {problem}", always_log=True)

    def _ready(self) -> bool:
        """Whether the sender may hand the next message to paho; caller holds the lock."""
        return self._connected and bool(self._waiting) and len(self._unacked) < INFLIGHT_WINDOW

    def _send_loop(self) -> None:
        """Move waiting messages to paho while connected, keeping the unacknowledged window small."""
        while True:
            with self._cond:
                while not self._stopping and not self._ready():
                    self._cond.wait(1.0)
                if self._stopping:
                    return
                message = self._waiting.popleft()
            self._hand_to_paho(message)

    def _hand_to_paho(self, message: _Outgoing) -> None:
        """Publish through paho and register the result; runs without holding our lock."""
        try:
            info = self._client.publish(message.topic, message.payload, message.qos, message.retain)
        except (ValueError, OSError) as error:
            with self._cond:
                self._dropped += 1
            self.record_error(f"publish to {message.topic!r} failed: {error}", always_log=True)
            return
        with self._cond:
            if message.qos == 0 and info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._dropped += 1
            elif info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._published += 1
            elif message.qos == 0:
                self._qos0[info.mid] = info
            else:  # also MQTT_ERR_NO_CONN: paho keeps QoS>0 messages and re-sends them after reconnect
                self._unacked.add(info.mid)

    def _publish_status(self, payload: bytes) -> MQTTMessageInfo | None:
        """Publish the retained status (online/offline) if a status topic is configured."""
        if not self._status_topic:
            return None
        info = self._client.publish(self._status_topic, payload, qos=1, retain=True)
        with self._cond:
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
            else:
                self._status_mids.add(info.mid)
        return info

    def _on_connect(
        self, _client: Client, _userdata: Any, _flags: ConnectFlags, reason: ReasonCode, _properties: Any
    ) -> None:
        """Broker answered CONNACK: on success announce online and let the sender drain the queue."""
        if reason.is_failure:
            with self._cond:
                self._mark_down()
            self.record_error(f"connection refused: {reason}")
            return
        LOG.info("MQTT broker %s: connected", self.address)
        self._publish_status(ONLINE)
        with self._cond:
            self._connected, self._down = True, False
            self._error_logged = False
            self._cond.notify_all()

    def _on_connect_fail(self, _client: Client, _userdata: Any) -> None:
        """TCP/TLS connection attempt failed; paho retries with backoff."""
        with self._cond:
            self._mark_down()
        self.record_error("cannot connect (broker unreachable or TLS failed); retrying with backoff")

    def _on_disconnect(
        self, _client: Client, _userdata: Any, _flags: DisconnectFlags, reason: ReasonCode, _properties: Any
    ) -> None:
        """Connection lost or closed: QoS>0 messages wait in the queue from now on."""
        with self._cond:
            was_connected = self._connected
            self._mark_down()
        if was_connected and not self._stopping:
            self.record_error(f"disconnected ({reason}); reconnecting with backoff")

    def _mark_down(self) -> None:
        """The broker is unreachable: QoS 0 messages are dropped from now on; caller holds the lock."""
        self._connected, self._down = False, True
        kept = deque(m for m in self._waiting if m.qos)
        self._dropped += len(self._waiting) - len(kept)
        self._waiting = kept

    def _on_publish(
        self, _client: Client, _userdata: Any, mid: int, _reason: ReasonCode, _properties: Any
    ) -> None:
        """Broker acknowledged a QoS>0 message, or paho wrote a QoS 0 one to the socket."""
        with self._cond:
            if mid in self._unacked or mid in self._qos0:
                self._unacked.discard(mid)
                self._qos0.pop(mid, None)
                self._published += 1
                self._cond.notify_all()
            elif mid in self._status_mids:
                self._status_mids.discard(mid)
            else:  # paho was faster than our registration of this mid
                self._early_acks.add(mid)

    def _settle_qos0(self) -> None:
        """Count QoS 0 messages that paho lost with a broken socket (it marks them failed, no callback)."""
        for mid, info in list(self._qos0.items()):
            try:
                info.is_published()
            except (RuntimeError, ValueError):
                del self._qos0[mid]
                self._dropped += 1

    def stats(self) -> BrokerStats:
        """A consistent snapshot of this broker's counters."""
        with self._cond:
            self._settle_qos0()
            return BrokerStats(
                self._connected,
                self._published,
                len(self._waiting) + len(self._unacked),
                self._dropped,
                self._errors,
                self._last_error,
                self._last_error_at,
            )

    def close(self, timeout: float) -> None:
        """Flush for up to `timeout` s, publish retained offline, disconnect and stop the threads."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._connected and (self._waiting or self._unacked) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._stopping = True
            self._dropped += len(self._waiting)
            self._waiting.clear()
            connected = self._connected
            self._cond.notify_all()
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
            if link is None:
                return
            problem = topic_problem(topic) or (None if qos in (0, 1, 2) else f"QoS {qos!r} is not 0, 1 or 2")
            if problem is not None:
                link.reject(problem)
                return
            link.submit(_Outgoing(topic, bytes(payload), qos, bool(retain)))
        except Exception as error:  # the sampling loop must never see an MQTT failure
            self._count_broken(address, f"{type(error).__name__}: {error}")

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
        """Count a dropped message for an address that cannot be used; log the first time."""
        with self._lock:
            before = self._broken.get(address)
            if before is None:
                LOG.error("MQTT broker %r cannot be used, its messages are dropped: %s", address, message)
                before = BrokerStats(False, 0, 0, 0, 0, message, self._clock())
            self._broken[address] = replace(before, dropped=before.dropped + 1, errors=before.errors + 1)

    def broker_stats(self) -> dict[str, BrokerStats]:
        """Counters per broker, keyed by canonical address (tcp://host:port, ssl://host:port) or, for an
        unusable address, as written."""
        with self._lock:
            links = list(self._links.values())
            result = dict(self._broken)
        result.update({link.address: link.stats() for link in links})
        return result

    def close(self, timeout: float = 2.0) -> None:
        """Publish retained "offline" to every broker, disconnect and stop all threads."""
        with self._lock:
            self._closed = True
            links = list(self._links.values())
        for link in links:
            link.close(timeout)
