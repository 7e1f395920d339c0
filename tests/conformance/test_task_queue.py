"""Conformance: the TaskQueue port: visibility, redelivery, stale receipts, dead-lettering, poison messages."""

from __future__ import annotations

import threading

import pytest

from blackboard import AgentRef, Backends, ConfigurationError, RecordValidationError, TaskMessage
from blackboard.messages import FabricationRequest
from tests.conftest import ManualClock


def _message(i: int) -> TaskMessage:
    return TaskMessage(orchestration_id="o1", task_id=f"t{i}", attempt=1, agent=AgentRef(name="cook", version=1))


def test_send_receive_ack(backends: Backends) -> None:
    queue = backends.queue
    ids = queue.send([_message(i) for i in range(3)])
    assert len(set(ids)) == 3
    received = queue.receive(10)
    assert [r.message_id for r in received] == ids
    assert [r.message for r in received] == [_message(i) for i in range(3)]
    assert all(r.receive_count == 1 for r in received)
    assert queue.receive(10) == []  # in flight: invisible
    assert queue.stats().in_flight == 3
    assert all(queue.ack(r.receipt) for r in received)
    assert queue.stats() == type(queue.stats())(0, 0, 0)
    assert not queue.ack(received[0].receipt)  # already deleted


def test_receive_respects_max_messages(backends: Backends) -> None:
    backends.queue.send([_message(i) for i in range(5)])
    assert len(backends.queue.receive(2)) == 2
    assert len(backends.queue.receive(10)) == 3
    with pytest.raises(ConfigurationError):
        backends.queue.receive(11)


def test_visibility_timeout_redelivers_and_voids_the_old_receipt(backends: Backends, clock: ManualClock) -> None:
    queue = backends.queue
    queue.send([_message(1)])
    first = queue.receive(1)[0]
    clock.advance(29)
    assert queue.receive(1) == []
    clock.advance(2)
    second = queue.receive(1)[0]
    assert second.message_id == first.message_id and second.receive_count == 2
    assert not queue.ack(first.receipt)  # stale: the message was delivered again since
    assert queue.ack(second.receipt)


def test_nack_with_delay(backends: Backends, clock: ManualClock) -> None:
    queue = backends.queue
    queue.send([_message(1)])
    received = queue.receive(1)[0]
    assert queue.nack(received.receipt, delay_seconds=5)
    assert not queue.nack(received.receipt)  # the receipt is spent
    assert queue.receive(1) == []
    clock.advance(5)
    assert queue.receive(1)[0].receive_count == 2


def test_delayed_send(backends: Backends, clock: ManualClock) -> None:
    backends.queue.send([_message(1)], delay_seconds=10)
    assert backends.queue.receive(1) == []
    assert backends.queue.stats().visible == 1
    clock.advance(10)
    assert len(backends.queue.receive(1)) == 1


def test_dead_letter_after_max_receives(backends: Backends) -> None:
    queue = backends.queue  # the conformance backends use max_receives=3
    queue.send([_message(1), _message(2)])
    for _ in range(3):
        for received in queue.receive(10):
            if received.message.task_id == "t1":
                queue.nack(received.receipt)
            else:
                queue.ack(received.receipt)
    assert queue.receive(10) == []
    dead = queue.dead_letters()
    assert [(d.receive_count, TaskMessage.parse_json(d.body).task_id) for d in dead] == [(3, "t1")]
    assert queue.stats().dead == 1 and queue.stats().visible == 0


def test_dead_letter_now_moves_a_received_message_at_once(backends: Backends, clock: ManualClock) -> None:
    queue = backends.queue
    ids = queue.send([_message(1), _message(2)])
    first, second = queue.receive(10)
    assert queue.dead_letter(first)
    assert not queue.dead_letter(first) and not queue.ack(first.receipt)  # the receipt is spent
    assert queue.ack(second.receipt)
    clock.advance(31)  # past the visibility timeout: it is not delivered again
    assert queue.receive(10) == []
    assert [(d.message_id, d.body) for d in queue.dead_letters()] == [(ids[0], first.body)]
    assert queue.stats() == type(queue.stats())(0, 0, 1)


def test_dead_letter_with_a_stale_receipt_changes_nothing(backends: Backends, clock: ManualClock) -> None:
    queue = backends.queue
    queue.send([_message(1)])
    stale = queue.receive(1)[0]
    clock.advance(31)
    fresh = queue.receive(1)[0]
    assert not queue.dead_letter(stale)
    assert queue.dead_letters() == [] and queue.ack(fresh.receipt)


def test_receive_with_its_own_visibility_timeout(backends: Backends, clock: ManualClock) -> None:
    queue = backends.queue  # the conformance backends default to 30 s
    queue.send([_message(1)])
    first = queue.receive(1, visibility_timeout=5)[0]
    clock.advance(4)
    assert queue.receive(1) == []
    clock.advance(2)
    again = queue.receive(1, visibility_timeout=120)[0]
    assert again.message_id == first.message_id and again.receive_count == 2
    clock.advance(100)  # longer than the default, shorter than this delivery's own
    assert queue.receive(1) == []


def test_poison_message_is_dead_lettered_not_lost(backends: Backends) -> None:
    queue = backends.queue
    queue.send_raw(['{"schema": "arbiter.task/1", "attempt": "many"}', "not json at all"])
    for _ in range(3):
        for received in queue.receive(10):
            with pytest.raises(RecordValidationError):
                _ = received.message
            queue.nack(received.receipt)
    assert queue.receive(10) == []
    assert {d.body for d in queue.dead_letters()} == {
        '{"schema": "arbiter.task/1", "attempt": "many"}',
        "not json at all",
    }


def test_carries_fabrication_requests(backends: Backends) -> None:
    request = FabricationRequest(orchestration_id="o", task_id="t", capability="summarise an alarm")
    backends.queue.send([request, _message(1)])
    assert [type(r.message) for r in backends.queue.receive(10)] == [FabricationRequest, TaskMessage]


def test_waiting_receive_wakes_on_send(backends: Backends) -> None:
    queue = backends.queue
    got: list[int] = []

    def consume() -> None:
        got.append(len(queue.receive(1, wait_seconds=30)))

    consumer = threading.Thread(target=consume)
    consumer.start()
    queue.send([_message(1)])
    consumer.join(timeout=30)
    assert got == [1]


def test_each_message_is_delivered_to_one_consumer_at_a_time(backends: Backends) -> None:
    queue = backends.queue
    queue.send([_message(i) for i in range(40)])
    seen: list[str] = []
    lock = threading.Lock()

    def consume() -> None:
        while batch := queue.receive(3):
            with lock:
                seen.extend(r.message_id for r in batch)
            for r in batch:
                assert queue.ack(r.receipt)

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 40 == len(set(seen))
