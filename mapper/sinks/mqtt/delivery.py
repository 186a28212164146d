"""Per-broker delivery bookkeeping without a client: the outage queue, in-flight window and counters.

The MQTT client glue (mapper/mqtt.py) calls these methods from the caller's thread, its sender thread
and paho's network thread; one condition variable guards everything here, and nothing here calls the
network while holding it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

INFLIGHT_WINDOW = 20  # QoS 1/2 messages handed to the client and not yet acknowledged


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
class Outgoing:
    """One message on its way to a broker."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class PublishOutcome(Protocol):
    """What the client returns for a QoS 0 publish: raises once the message is known to be lost."""

    def is_published(self) -> bool:
        """True once written; raises RuntimeError/ValueError when the message was lost."""
        ...


class DeliveryBook:
    """Messages of one broker between publish() and the broker's acknowledgement, counted exactly."""

    def __init__(self, queue_size: int, clock: Callable[[], float]) -> None:
        self._queue_size = queue_size
        self._clock = clock
        self._cond = threading.Condition()
        self._waiting: deque[Outgoing] = deque()
        self._unacked: set[int] = set()  # message ids of QoS 1/2 data handed to the client
        self._qos0: dict[int, PublishOutcome] = {}  # QoS 0 handed to the client, not yet written
        self._status_ids: set[int] = set()
        self._early_acks: set[int] = set()  # acks that arrived before their id was recorded
        self._connected = False
        self._down = False  # a connection attempt failed or was lost (not merely "still connecting")
        self._stopping = False
        self._published = self._dropped = self._errors = 0
        self._last_error = ""
        self._last_error_at: float | None = None
        self._in_error_streak = False

    def submit(self, message: Outgoing) -> None:
        """Queue a message; while the broker is down QoS 0 is dropped. Full queue: drop the oldest."""
        with self._cond:
            if self._stopping or (self._down and (message.qos == 0 or self._queue_size == 0)):
                self._dropped += 1
                return
            self._waiting.append(message)
            while len(self._waiting) > max(self._queue_size, 1):
                self._waiting.popleft()
                self._dropped += 1
            self._cond.notify_all()

    def count_dropped(self, count: int = 1) -> None:
        """Count messages that cannot be sent at all."""
        with self._cond:
            self._dropped += count

    def record_error(self, message: str) -> bool:
        """Count an error; True when it starts a streak (the caller logs those loudly)."""
        with self._cond:
            self._errors += 1
            self._last_error, self._last_error_at = message, self._clock()
            first, self._in_error_streak = not self._in_error_streak, True
            return first

    def mark_connected(self) -> None:
        """The broker accepted the connection: the sender may drain the queue."""
        with self._cond:
            self._connected, self._down, self._in_error_streak = True, False, False
            self._cond.notify_all()

    def mark_down(self) -> bool:
        """The broker is unreachable: waiting QoS 0 messages are dropped. Returns whether it was connected."""
        with self._cond:
            was_connected, self._connected, self._down = self._connected, False, True
            kept = deque(m for m in self._waiting if m.qos)
            self._dropped += len(self._waiting) - len(kept)
            self._waiting = kept
            return was_connected

    def next_to_send(self) -> Outgoing | None:
        """Block until connected with a message to send and room in the window; None once stopping."""
        with self._cond:
            while not self._stopping and not (
                self._connected and self._waiting and len(self._unacked) < INFLIGHT_WINDOW
            ):
                self._cond.wait(30.0)  # a safety net: every change of the condition notifies
            return None if self._stopping else self._waiting.popleft()

    def record_handoff(self, message: Outgoing, message_id: int, accepted: bool, outcome: PublishOutcome) -> None:
        """The client took a message (QoS 1/2 are kept by the client even when not `accepted`)."""
        with self._cond:
            if message.qos == 0 and not accepted:
                self._dropped += 1
            elif message_id in self._early_acks:
                self._early_acks.discard(message_id)
                self._published += 1
            elif message.qos == 0:
                self._qos0[message_id] = outcome
            else:
                self._unacked.add(message_id)

    def record_status(self, message_id: int) -> None:
        """A status message (not counted) was handed to the client."""
        with self._cond:
            if message_id in self._early_acks:
                self._early_acks.discard(message_id)
            else:
                self._status_ids.add(message_id)

    def record_ack(self, message_id: int) -> None:
        """The broker acknowledged a QoS 1/2 message, or the client wrote a QoS 0 one."""
        with self._cond:
            if message_id in self._unacked or message_id in self._qos0:
                self._unacked.discard(message_id)
                self._qos0.pop(message_id, None)
                self._published += 1
                self._cond.notify_all()
            elif message_id in self._status_ids:
                self._status_ids.discard(message_id)
            else:  # the client was faster than our record of the hand-off
                self._early_acks.add(message_id)

    def _settle_qos0(self) -> None:
        """Count QoS 0 messages the client lost with a broken socket; caller holds the lock."""
        for message_id, outcome in list(self._qos0.items()):
            try:
                outcome.is_published()
            except (RuntimeError, ValueError):
                del self._qos0[message_id]
                self._dropped += 1

    def stats(self) -> BrokerStats:
        """A consistent snapshot of the counters."""
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

    def stop(self, flush_timeout: float) -> bool:
        """Wait up to `flush_timeout` s for the queue to empty, then stop (leftovers dropped); True if connected."""
        deadline = time.monotonic() + flush_timeout
        with self._cond:
            while self._connected and (self._waiting or self._unacked) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._stopping = True
            self._dropped += len(self._waiting)
            self._waiting.clear()
            self._cond.notify_all()
            return self._connected

    @property
    def stopping(self) -> bool:
        """Whether stop() was called."""
        with self._cond:
            return self._stopping
