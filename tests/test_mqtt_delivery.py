"""DeliveryBook paths a real broker cannot trigger on demand: ack-before-record races and lost QoS 0."""

from __future__ import annotations

from mapper.sinks.mqtt.delivery import DeliveryBook, Outgoing


class _Written:
    """Outcome of a QoS 0 message that is still in flight or written."""

    def is_published(self) -> bool:
        return False


class _LostWithSocket:
    """Outcome paho reports for a QoS 0 message it discarded when the connection broke."""

    def is_published(self) -> bool:
        raise RuntimeError("The client lost the connection")


def _book(queue_size: int = 3) -> DeliveryBook:
    book = DeliveryBook(queue_size, clock=lambda: 123.0)
    book.mark_connected()
    return book


def test_an_ack_that_overtakes_the_handoff_record_is_counted_once() -> None:
    book = _book()
    message = Outgoing("t", b"x", 1, False)
    book.submit(message)
    assert book.next_to_send() == message
    book.record_ack(7)  # network thread first
    book.record_handoff(message, 7, True, _Written())
    stats = book.stats()
    assert (stats.published, stats.queued) == (1, 0)


def test_status_acks_are_not_counted_even_when_they_come_first() -> None:
    book = _book()
    book.record_ack(3)
    book.record_status(3)
    book.record_status(4)
    book.record_ack(4)
    assert book.stats().published == 0


def test_qos0_lost_with_the_socket_is_dropped_and_written_ones_are_published() -> None:
    book = _book()
    lost, kept = Outgoing("t", b"1", 0, False), Outgoing("t", b"2", 0, False)
    book.record_handoff(lost, 1, True, _LostWithSocket())
    book.record_handoff(kept, 2, True, _Written())
    book.record_ack(2)
    stats = book.stats()
    assert (stats.published, stats.dropped, stats.queued) == (1, 1, 0)


def test_down_broker_keeps_the_newest_qos1_and_drops_qos0() -> None:
    book = _book(queue_size=3)
    book.submit(Outgoing("t", b"0", 0, False))  # waiting QoS 0 is dropped when the broker goes down
    assert book.mark_down() is True
    for number in range(5):
        book.submit(Outgoing("t", str(number).encode(), 1, False))
    book.submit(Outgoing("t", b"q0", 0, False))
    assert book.stats().queued == 3 and book.stats().dropped == 1 + 2 + 1
    book.mark_connected()
    sent = [book.next_to_send() for _ in range(3)]
    assert [m.payload for m in sent if m] == [b"2", b"3", b"4"]


def test_errors_are_counted_and_only_the_first_of_a_streak_is_loud() -> None:
    book = _book()
    assert book.record_error("a") is True
    assert book.record_error("b") is False
    book.mark_connected()
    assert book.record_error("c") is True
    stats = book.stats()
    assert (stats.errors, stats.last_error, stats.last_error_at) == (3, "c", 123.0)
