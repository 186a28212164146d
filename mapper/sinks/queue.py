"""The delivery core of the data-panel sinks: per target a bounded queue, one sender thread, retries, counters.

`put` never blocks and never touches the network: a full queue drops its oldest waiting item and counts it. The
sender thread writes batches through a `Writer`; a failed write is retried with capped exponential backoff,
with the same items first, until the receiver is back (no restart needed). A `Permanent` error (the receiver
refuses the data itself) drops that batch instead of blocking everything behind it. Every item ends up sent,
dropped or still queued, and the counters say which.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from mapper.devices.redact import redact
from mapper.sinks.base import SinkStats

log = logging.getLogger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Permanent(Exception):
    """The receiver refused this batch for what it holds: retrying cannot help, so it is dropped."""


class Writer(Protocol[T_contra]):
    """Writes batches to one target over a connection it keeps; raises on failure, never logs secrets."""

    def write(self, batch: Sequence[T_contra]) -> None:
        """Deliver every item of `batch` or raise (Permanent when the data itself is refused)."""

    def close(self) -> None:
        """Release the connection."""


@dataclass(frozen=True)
class QueueSettings:
    """How one sink queues and retries towards each of its targets."""

    size: int = 1000
    batch: int = 100
    backoff_initial: float = 1.0
    backoff_max: float = 30.0


class DeliveryQueue(Generic[T]):
    """The items of one sink towards one target, sent in order by one thread.

    Items stay in the queue until a write confirms them. When the queue is full the oldest item goes, even one
    that is being written: if that write succeeds the item counts as sent, otherwise as dropped.
    """

    def __init__(self, sink: str, target: str, writer: Writer[T], settings: QueueSettings,
                 clock: Callable[[], float] = time.monotonic, secrets: Sequence[str] = ()) -> None:
        self.sink = sink
        self.target = redact(target)
        self._secrets = tuple(secret for secret in secrets if secret)
        self._writer = writer
        self._size = max(settings.size, 1)
        self._batch = max(settings.batch, 1)
        self._backoff_initial = settings.backoff_initial
        self._backoff_max = settings.backoff_max
        self._clock = clock
        self._cond = threading.Condition()
        self._items: deque[tuple[int, T]] = deque()
        self._next_seq = 0
        self._writing: tuple[int, int] | None = None  # first and last sequence number of the batch being written
        self._gone_while_writing = 0  # items of that batch pushed out of the full queue meanwhile
        self._sent = self._failed = self._dropped = 0
        self._up = False
        self._streak = False  # failing since the last successful write
        self._stopping = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def put(self, item: T) -> None:
        """Queue one item; the oldest one goes (counted) when the queue is full. Never blocks."""
        with self._cond:
            if self._stopping:
                self._dropped += 1
                return
            self._items.append((self._next_seq, item))
            self._next_seq += 1
            while len(self._items) > self._size:
                seq, _ = self._items.popleft()
                if self._writing is not None and self._writing[0] <= seq <= self._writing[1]:
                    self._gone_while_writing += 1
                else:
                    self._dropped += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"{self.sink}-sender", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def drop(self, count: int = 1) -> None:
        """Count items that could not even be queued (for example a value the target cannot hold)."""
        with self._cond:
            self._dropped += count

    def stats(self) -> SinkStats:
        """A consistent snapshot of the counters."""
        with self._cond:
            return SinkStats(self.target, self._sent, self._failed, self._dropped, len(self._items), self._up)

    def _next_batch(self) -> list[tuple[int, T]] | None:
        """Wait for something to send and mark the oldest items as being written; None once stopping."""
        with self._cond:
            while not self._stopping and not self._items:
                self._cond.wait()
            if self._stopping:
                return None
            batch = [self._items[index] for index in range(min(self._batch, len(self._items)))]
            self._writing, self._gone_while_writing = (batch[0][0], batch[-1][0]), 0
            return batch

    def _run(self) -> None:
        backoff = self._backoff_initial
        while (batch := self._next_batch()) is not None:
            try:
                self._writer.write([item for _, item in batch])
            except Permanent as exc:
                self._settle(len(batch), delivered=False, failed=False)
                log.error("%s to %s: %d item(s) refused and dropped: %s", self.sink, self.target, len(batch),
                          self._shown(exc))
                continue
            except Exception as exc:  # any client error is a failed attempt: retry later, keep the items
                if self._settle(len(batch), delivered=False, failed=True):
                    log.warning("%s to %s failed (%s: %s); retrying with backoff up to %g s", self.sink,
                                self.target, type(exc).__name__, self._shown(exc), self._backoff_max)
                with self._cond:
                    if not self._stopping:
                        self._cond.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            if self._settle(len(batch), delivered=True, failed=False):
                log.info("%s to %s delivering again", self.sink, self.target)
            backoff = self._backoff_initial

    def _shown(self, error: BaseException) -> str:
        """An error's text for a log line: addresses redacted, the target's credentials masked."""
        text = redact(str(error))
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _settle(self, count: int, delivered: bool, failed: bool) -> bool:
        """Record one attempt on a batch of `count` items; True when it starts or ends an error streak."""
        with self._cond:
            if self._closed or self._writing is None:  # close() has counted the batch already
                return False
            last = self._writing[1]
            gone, self._writing, self._gone_while_writing = self._gone_while_writing, None, 0
            if failed:  # the batch stays queued; what the full queue pushed out of it is lost
                self._dropped += gone
                self._failed += 1
            else:
                while self._items and self._items[0][0] <= last:
                    self._items.popleft()
                if delivered:
                    self._sent += count
                else:
                    self._dropped += count
                    self._failed += 1
            self._up = not failed  # a receiver that refused data still answered
            changed = self._streak != failed
            self._streak = failed
            self._cond.notify_all()
            return changed

    def close(self, deadline: float) -> None:
        """Send what is queued until `deadline` (monotonic) unless the last write failed, then stop; drop the rest."""
        with self._cond:  # a target not written to yet gets its chance: a shutdown right after a put still sends
            while self._items and not self._streak and self._clock() < deadline:
                self._cond.wait(0.05)
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(max(deadline - self._clock(), 0.0) + 1.0)
        with self._cond:
            self._closed, self._up = True, False
            self._dropped += len(self._items)
            self._items.clear()
        try:
            self._writer.close()
        except Exception:  # closing a broken connection must not stop the mapper's shutdown
            log.debug("closing %s writer for %s failed", self.sink, self.target, exc_info=True)
