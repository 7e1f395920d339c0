"""SqsTaskQueue under moto: batching, refused entries, throttling, poison messages, size limits, API calls."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from blackboard import (
    AgentRef,
    BatchFailedError,
    ConfigurationError,
    MessageTooLargeError,
    RecordValidationError,
    StoreUnavailableError,
    TaskMessage,
)
from blackboard.adapters.aws import SqsTaskQueue
from blackboard.adapters.aws._clients import client_config
from blackboard.adapters.aws.sqs_queue import MESSAGE_ID_ATTRIBUTE
from tests.aws_io_support import (
    CallCounter,
    FlakySqsClient,
    MotoResources,
    answer_with_error,
    create_queue,
    moto_resources,
)
from tests.aws_io_support import no_retry_waits as no_retry_waits  # a fixture

pytestmark = pytest.mark.aws


def _message(i: int, **input: object) -> TaskMessage:
    return TaskMessage(
        orchestration_id="o1", task_id=f"t{i}", attempt=1, agent=AgentRef(name="cook", version=1), input=input
    )


@pytest.fixture
def resources() -> Iterator[MotoResources]:
    with moto_resources(max_receives=3) as created:
        yield created


def _queue(resources: MotoResources, client: object = None) -> SqsTaskQueue:
    client = client if client is not None else resources.client("sqs")
    return SqsTaskQueue(resources.queue_url, client=client, visibility_timeout=30, retry_base_seconds=0.001)


def _drain(queue: SqsTaskQueue) -> list[str]:
    """Receive and ack everything; return the task ids in the order received."""
    seen: list[str] = []
    while batch := queue.receive(10):
        for received in batch:
            seen.append(TaskMessage.parse_json(received.body).task_id)
            assert queue.ack(received.receipt)
    return seen


def test_send_batches_ten_at_a_time(resources: MotoResources) -> None:
    queue = _queue(resources)
    calls = CallCounter(queue.client)
    ids = queue.send([_message(i) for i in range(23)])
    assert calls.calls == ["SendMessageBatch"] * 3
    received = queue.receive(10)
    assert [r.message_id for r in received] == ids[:10]
    assert Counter(_drain(queue)) + Counter(r.message.task_id for r in received) == Counter(f"t{i}" for i in range(23))


def test_batches_also_split_by_bytes(resources: MotoResources) -> None:
    queue = _queue(resources)
    calls = CallCounter(queue.client)
    queue.send([_message(i, blob="x" * 50_000) for i in range(5)])  # ~100 KB each (input twice: the alias): two a batch
    assert calls.calls == ["SendMessageBatch"] * 3
    assert sorted(_drain(queue)) == [f"t{i}" for i in range(5)]


def test_a_refused_entry_is_sent_again_alone_and_nothing_doubles(resources: MotoResources) -> None:
    flaky = FlakySqsClient(resources.client("sqs"), lambda entry: '"t3"' in entry["MessageBody"], times=2)
    queue = _queue(resources, flaky)
    ids = queue.send([_message(i) for i in range(6)])
    assert [len(batch) for batch in flaky.batches] == [6, 1, 1]
    assert flaky.batches[1] == flaky.batches[2] == [ids[3]]  # the same entry id each time
    assert sorted(_drain(queue)) == [f"t{i}" for i in range(6)]


def test_an_entry_refused_every_time_is_reported_with_the_others_sent_once(resources: MotoResources) -> None:
    flaky = FlakySqsClient(resources.client("sqs"), lambda entry: '"t1"' in entry["MessageBody"], times=None)
    queue = _queue(resources, flaky)
    with pytest.raises(BatchFailedError) as raised:
        queue.send([_message(i) for i in range(4)])
    error = raised.value
    assert len(flaky.batches) == queue.send_attempts == 4
    assert list(error.failures) == [flaky.batches[0][1]]
    assert error.failures[flaky.batches[0][1]][0] == "InternalError"
    assert error.accepted == [flaky.batches[0][i] for i in (0, 2, 3)]
    assert error.retryable and "InternalError" in str(error) and "3 other entries were accepted" in str(error)
    assert sorted(_drain(queue)) == ["t0", "t2", "t3"]


def test_a_sender_fault_is_not_retried(resources: MotoResources) -> None:
    flaky = FlakySqsClient(
        resources.client("sqs"), lambda entry: '"t0"' in entry["MessageBody"], code="InvalidParameterValue",
        sender_fault=True,
    )  # fmt: skip
    queue = _queue(resources, flaky)
    with pytest.raises(BatchFailedError) as raised:
        queue.send([_message(0), _message(1)])
    assert len(flaky.batches) == 1 and not raised.value.retryable
    assert _drain(queue) == ["t1"]


def test_oversize_messages_are_refused_before_anything_is_sent(resources: MotoResources) -> None:
    queue = _queue(resources)
    calls = CallCounter(queue.client)
    with pytest.raises(MessageTooLargeError, match="262,144") as raised:
        queue.send([_message(0), _message(1, blob="x" * 262_144)])
    assert raised.value.size > raised.value.limit == 262_144
    assert "payload store" in str(raised.value)
    assert calls.count("SendMessageBatch") == 0
    assert queue.stats().visible == 0


def test_poison_messages_reach_the_dead_letter_queue_by_redrive(resources: MotoResources) -> None:
    queue = _queue(resources)
    queue.send_raw(["not json", '{"schema": "arbiter.task/1"}'])
    queue.send([_message(1)])
    receives = Counter[str]()
    for _ in range(4):
        for received in queue.receive(10):
            try:
                message = received.message
            except RecordValidationError:
                receives[received.body] += 1
                assert queue.nack(received.receipt)  # what the worker loop does with an unreadable message
                continue
            assert queue.ack(received.receipt) and message.task_id == "t1"
    assert receives == {"not json": 3, '{"schema": "arbiter.task/1"}': 3}
    # SQS itself moved them: they are in the real dead-letter queue, bodies intact.
    dlq = resources.client("sqs").receive_message(QueueUrl=resources.dead_letter_url, MaxNumberOfMessages=10)
    assert {m["Body"] for m in dlq["Messages"]} == {'{"schema": "arbiter.task/1"}', "not json"}
    for m in dlq["Messages"]:
        resources.client("sqs").change_message_visibility(
            QueueUrl=resources.dead_letter_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    letters = queue.dead_letters()
    assert {d.body for d in letters} == {'{"schema": "arbiter.task/1"}', "not json"}
    assert {d.receive_count for d in letters} == {3}
    assert queue.stats().dead == 2 and queue.max_receives == 3


@pytest.mark.usefixtures("no_retry_waits")
def test_throttled_receive_is_retried_then_reported(resources: MotoResources) -> None:
    client = resources.session.client("sqs", config=client_config(max_attempts=3))
    queue = _queue(resources, client)
    body = json.dumps({"__type": "com.amazonaws.sqs#RequestThrottled", "message": "Rate exceeded"}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-query-error": "RequestThrottled;Sender"}
    attempts = answer_with_error(client, "ReceiveMessage", 400, body, headers)
    with pytest.raises(StoreUnavailableError, match="throttled") as raised:
        queue.receive(1)
    assert len(attempts) == 3 and raised.value.retryable


def test_a_relayed_body_without_our_id_gets_the_sqs_id(resources: MotoResources) -> None:
    queue = _queue(resources)
    sent = queue.client.send_message(QueueUrl=resources.queue_url, MessageBody=_message(1).to_json())
    (received,) = queue.receive(1)
    assert received.message_id == sent["MessageId"] and received.message.task_id == "t1"


def test_message_ids_travel_in_an_attribute(resources: MotoResources) -> None:
    queue = _queue(resources)
    (message_id,) = queue.send([_message(1)])
    raw = queue.client.receive_message(QueueUrl=resources.queue_url, MessageAttributeNames=["All"])["Messages"][0]
    assert raw["MessageAttributes"][MESSAGE_ID_ATTRIBUTE]["StringValue"] == message_id


def test_a_queue_without_a_dead_letter_queue_is_a_configuration_error(resources: MotoResources) -> None:
    url = resources.client("sqs").create_queue(QueueName="no-dlq")["QueueUrl"]
    queue = SqsTaskQueue(url, session=resources.session)
    with pytest.raises(ConfigurationError, match="RedrivePolicy"):
        queue.stats()


def test_settings_are_checked(resources: MotoResources) -> None:
    for options in ({"wait_seconds": 0}, {"wait_seconds": 21}, {"visibility_timeout": 50_000}, {"send_attempts": 0}):
        with pytest.raises(ConfigurationError):
            SqsTaskQueue(resources.queue_url, session=resources.session, **options)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="900"):
        _queue(resources).send([_message(1)], delay_seconds=901)


def test_api_calls_per_operation(resources: MotoResources) -> None:
    other_url, _ = create_queue(resources.client("sqs"), "other", max_receives=5)
    queue = _queue(resources)
    calls = CallCounter(queue.client)
    queue.send([_message(i) for i in range(10)])
    assert calls.calls == ["SendMessageBatch"]
    calls.reset()
    first, second = queue.receive(2)
    assert calls.calls == ["ReceiveMessage"]
    calls.reset()
    assert queue.ack(first.receipt) and queue.nack(second.receipt, delay_seconds=3)
    assert calls.calls == ["DeleteMessage", "ChangeMessageVisibility"]
    calls.reset()
    assert not queue.ack(first.receipt) and not queue.nack(second.receipt)  # spent: refused without a call
    assert calls.calls == []
    queue.stats()
    queue.stats()
    assert (
        calls.calls
        == ["GetQueueAttributes", "GetQueueUrl", "GetQueueAttributes", "GetQueueAttributes"]
        + ["GetQueueAttributes"] * 2
    )
    assert SqsTaskQueue(other_url, session=resources.session).max_receives == 5


def test_a_receipt_from_another_consumer_is_left_to_sqs(resources: MotoResources) -> None:
    here, there = _queue(resources), _queue(resources)
    here.send([_message(1)])
    (received,) = here.receive(1)
    assert there.ack(received.receipt)  # unknown there: SQS decides, and deletes it
    assert not there.ack("not-a-receipt")
    assert here.stats().in_flight == 0 and here.receive(1) == []
