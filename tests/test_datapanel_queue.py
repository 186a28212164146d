"""The data-panel delivery core: never blocks, drops the oldest when full and counts it, retries until the target
is back, drops what the target refuses, and accounts for every item (sent + dropped + queued = put)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pytest
from common import wait_until

from mapper.sinks.queue import DeliveryQueue, Permanent, QueueSettings

FAST = QueueSettings(size=5, batch=2, backoff_initial=0.01, backoff_max=0.05)


class Target:
    """An in-memory receiver that can be down, refuse, or hang."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.down = False
        self.refuse: set[int] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.attempts = 0

    def write(self, batch: Sequence[int]) -> None:
        self.attempts += 1
        self.gate.wait()
        if self.down:
            raise ConnectionError("refused by 127.0.0.1 with password=hunter2")
        if self.refuse & set(batch):
            raise Permanent("bad value")
        self.received.extend(batch)

    def close(self) -> None:
        pass


def totals(queue: DeliveryQueue[int]) -> tuple[int, int, int]:
    stats = queue.stats()
    return stats.sent, stats.dropped, stats.queued


def test_items_arrive_in_order_and_are_counted() -> None:
    target = Target()
    queue = DeliveryQueue("test", "tcp://u:pw@host:1", target, FAST)
    for item in range(5):
        queue.put(item)
    wait_until(lambda: totals(queue) == (5, 0, 0), "all sent")
    assert target.received == [0, 1, 2, 3, 4]
    assert queue.stats().up and queue.stats().target == "tcp://***@host:1"
    queue.close(time.monotonic() + 1)


def test_an_outage_keeps_the_newest_items_and_counts_the_oldest_as_dropped() -> None:
    target = Target()
    target.down = True
    queue = DeliveryQueue("test", "t", target, FAST)
    for item in range(12):
        queue.put(item)
    wait_until(lambda: queue.stats().failed >= 2, "failed attempts")
    assert not queue.stats().up
    target.down = False
    wait_until(lambda: queue.stats().queued == 0, "recovered")
    sent, dropped, queued = totals(queue)
    assert (sent, dropped, queued) == (5, 7, 0)
    assert target.received == [7, 8, 9, 10, 11], "the newest five (the queue size) arrive, in order"
    assert queue.stats().up
    queue.close(time.monotonic() + 1)


def test_an_item_pushed_out_while_it_is_being_written_counts_once() -> None:
    target = Target()
    target.gate.clear()  # the first write hangs
    queue = DeliveryQueue("test", "t", target, QueueSettings(size=2, batch=2, backoff_initial=0.01))
    queue.put(0)
    wait_until(lambda: target.attempts == 1, "write started")
    for item in range(1, 5):
        queue.put(item)  # never blocks although the writer hangs
    target.gate.set()
    wait_until(lambda: queue.stats().queued == 0, "drained")
    sent, dropped, _ = totals(queue)
    assert sent + dropped == 5 and target.received[0] == 0 and target.received[-2:] == [3, 4]
    assert sent == len(target.received)
    queue.close(time.monotonic() + 1)


def test_a_refused_batch_is_dropped_and_the_rest_flows() -> None:
    target = Target()
    target.refuse = {2}
    queue = DeliveryQueue("test", "t", target, QueueSettings(size=10, batch=1, backoff_initial=0.01))
    for item in range(4):
        queue.put(item)
    wait_until(lambda: queue.stats().queued == 0, "drained")
    assert target.received == [0, 1, 3]
    assert (queue.stats().sent, queue.stats().dropped, queue.stats().failed) == (3, 1, 1)
    queue.close(time.monotonic() + 1)


def test_close_waits_for_a_first_write_still_under_way() -> None:
    target = Target()
    target.gate.clear()  # the first write hangs until the gate opens, after close() has begun
    queue = DeliveryQueue("test", "a", target, FAST)
    for item in range(3):
        queue.put(item)
    wait_until(lambda: target.attempts == 1, "first write begun")
    threading.Timer(0.2, target.gate.set).start()
    queue.close(time.monotonic() + 5)
    assert totals(queue) == (3, 0, 0) and target.received == [0, 1, 2]


def test_close_flushes_a_reachable_target_and_drops_what_an_unreachable_one_holds() -> None:
    reachable, unreachable = Target(), Target()
    unreachable.down = True
    good = DeliveryQueue("test", "a", reachable, FAST)
    bad = DeliveryQueue("test", "b", unreachable, FAST)
    for item in range(3):
        good.put(item)
        bad.put(item)
    deadline = time.monotonic() + 0.5
    good.close(deadline)
    bad.close(deadline)
    assert totals(good) == (3, 0, 0)
    assert totals(bad) == (0, 3, 0)
    bad.put(9)
    assert totals(bad) == (0, 4, 0), "after close nothing is queued"


def test_failures_are_logged_once_per_outage_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mapper.sinks.queue")
    target = Target()
    target.down = True
    queue = DeliveryQueue("test", "http://user:secret@h:1", target, FAST, secrets=("hunter2",))
    queue.put(1)
    wait_until(lambda: queue.stats().failed >= 4, "several failed attempts")
    target.down = False
    wait_until(lambda: queue.stats().sent == 1, "recovered")
    queue.close(time.monotonic() + 1)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "secret" not in caplog.text and "hunter2" not in caplog.text
    assert "delivering again" in caplog.text
