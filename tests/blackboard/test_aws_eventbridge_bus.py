"""EventBridgeBus under moto: batching, refused entries, oversize events, rule delivery, event conversion."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from blackboard import (
    BatchFailedError,
    ConfigurationError,
    Event,
    MessageTooLargeError,
    RecordValidationError,
    StoreUnavailableError,
)
from blackboard.adapters.aws import EventBridgeBus, event_from_eventbridge
from blackboard.adapters.aws._clients import client_config
from blackboard.adapters.aws.eventbridge_bus import MAX_EVENT_BYTES, entry_size
from tests.aws_io_support import CallCounter, FlakyEventsClient, MotoResources, answer_with_error, moto_resources
from tests.aws_io_support import no_retry_waits as no_retry_waits  # a fixture

pytestmark = pytest.mark.aws

SOURCE = "test.orders"


def _event(n: int, **detail: Any) -> Event:
    return Event.parse({"source": SOURCE, "detail-type": "Order-Placed", "detail": {"n": n, **detail}})


@dataclass
class Target:
    """An SQS queue that a rule on the bus feeds with every event from ``SOURCE`` (moto delivers at once)."""

    sqs: Any
    url: str

    def events(self) -> list[Event]:
        got: list[Event] = []
        while messages := self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                got.append(event_from_eventbridge(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return got


@pytest.fixture
def resources() -> Iterator[MotoResources]:
    with moto_resources() as created:
        yield created


@pytest.fixture
def target(resources: MotoResources) -> Target:
    sqs, events = resources.client("sqs"), resources.client("events")
    url = sqs.create_queue(QueueName="order-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="orders", EventBusName=resources.bus_name, EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="orders", EventBusName=resources.bus_name, Targets=[{"Id": "q", "Arn": arn}])
    return Target(sqs, url)


def _bus(resources: MotoResources, client: Any = None) -> EventBridgeBus:
    client = client if client is not None else resources.client("events")
    return EventBridgeBus(resources.bus_name, client=client, retry_base_seconds=0.001)


def test_publish_batches_ten_at_a_time_and_rules_deliver(resources: MotoResources, target: Target) -> None:
    bus = _bus(resources)
    calls = CallCounter(bus.client)
    events = [_event(i) for i in range(23)]
    assert bus.publish(events) == [e.id for e in events]
    assert calls.calls == ["PutEvents"] * 3
    delivered = target.events()
    assert sorted(e.detail["n"] for e in delivered) == list(range(23))
    first = next(e for e in delivered if e.detail["n"] == 0)
    assert (first.source, first.detail_type) == (SOURCE, "Order-Placed")
    assert first.time == events[0].time.replace(microsecond=0)  # EventBridge keeps whole seconds
    assert first.region == "us-east-1" and first.id != events[0].id  # EventBridge assigns ids of its own


def test_batches_also_split_by_bytes(resources: MotoResources) -> None:
    bus = _bus(resources)
    calls = CallCounter(bus.client)
    bus.publish([_event(i, blob="x" * 100_000) for i in range(5)])
    assert calls.calls == ["PutEvents"] * 3  # two per call fit in 256 KiB


def test_refused_entries_are_sent_again_alone_and_nothing_doubles(resources: MotoResources, target: Target) -> None:
    flaky = FlakyEventsClient(resources.client("events"), lambda entry: json.loads(entry["Detail"])["n"] in (2, 7))
    bus = _bus(resources, flaky)
    got: list[int] = []
    bus.subscribe({"source": [SOURCE]}, lambda e: got.append(e.detail["n"]))
    bus.publish([_event(i) for i in range(10)])
    assert [len(batch) for batch in flaky.batches] == [10, 2]
    assert [json.loads(detail)["n"] for detail in flaky.batches[1]] == [2, 7]
    assert Counter(e.detail["n"] for e in target.events()) == Counter(range(10))
    assert got == list(range(10))  # in process: each once, in order, after EventBridge took them


def test_entries_refused_every_time_are_reported_by_id_and_code(resources: MotoResources, target: Target) -> None:
    flaky = FlakyEventsClient(
        resources.client("events"),
        lambda entry: json.loads(entry["Detail"])["n"] in (1, 3),
        times=None,
        code="ThrottlingException",
    )
    bus = _bus(resources, flaky)
    got: list[int] = []
    bus.subscribe({"source": [SOURCE]}, lambda e: got.append(e.detail["n"]))
    events = [_event(i) for i in range(5)]
    with pytest.raises(BatchFailedError) as raised:
        bus.publish(events)
    error = raised.value
    assert len(flaky.batches) == bus.attempts == 4
    assert error.failures == {
        events[1].id: ("ThrottlingException", "injected failure"),
        events[3].id: ("ThrottlingException", "injected failure"),
    }
    assert error.accepted == [events[i].id for i in (0, 2, 4)] and error.retryable
    assert events[1].id in str(error) and "ThrottlingException" in str(error)
    assert sorted(e.detail["n"] for e in target.events()) == [0, 2, 4]
    assert got == [0, 2, 4]


def test_an_entry_refused_as_invalid_is_not_retried(resources: MotoResources) -> None:
    flaky = FlakyEventsClient(
        resources.client("events"), lambda entry: json.loads(entry["Detail"])["n"] == 0, code="MalformedDetail"
    )
    with pytest.raises(BatchFailedError) as raised:
        _bus(resources, flaky).publish([_event(0), _event(1)])
    assert len(flaky.batches) == 1 and not raised.value.retryable


def test_an_oversize_event_is_refused_before_anything_is_sent(resources: MotoResources, target: Target) -> None:
    bus = _bus(resources)
    calls = CallCounter(bus.client)
    got: list[Event] = []
    bus.subscribe({"source": [SOURCE]}, got.append)
    big = _event(1, blob="x" * MAX_EVENT_BYTES)
    with pytest.raises(MessageTooLargeError) as raised:
        bus.publish([_event(0), big])
    assert big.id in str(raised.value) and SOURCE in str(raised.value) and "262,144" in str(raised.value)
    assert raised.value.identifier.startswith(f"event {big.id}")
    assert calls.calls == [] and got == [] and target.events() == []


@pytest.mark.usefixtures("no_retry_waits")
def test_a_throttled_call_is_retried_then_reported_and_nothing_is_delivered(resources: MotoResources) -> None:
    client = resources.session.client("events", config=client_config(max_attempts=3))
    bus = _bus(resources, client)
    got: list[Event] = []
    bus.subscribe({"source": [SOURCE]}, got.append)
    body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
    attempts = answer_with_error(client, "PutEvents", 400, body, {"Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(StoreUnavailableError, match="throttled"):
        bus.publish([_event(0)])
    assert len(attempts) == 3 and got == []


def test_entry_size_counts_as_eventbridge_does() -> None:
    entry = {"Time": 1, "Source": "é", "DetailType": "ab", "Detail": '{"k":1}', "Resources": ["arn:x"]}
    assert entry_size(entry) == 14 + 2 + 2 + 7 + 5


def test_event_from_eventbridge_accepts_every_delivery_shape() -> None:
    delivered = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "task.completed",
        "source": "arbiter.wrapper",
        "account": "111122223333",
        "time": "2026-11-30T00:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {"task_id": "t1"},
        "replay-name": "r1",
    }
    as_lambda = event_from_eventbridge(delivered)
    as_body = event_from_eventbridge(json.dumps(delivered))
    as_record = event_from_eventbridge({"eventSource": "aws:sqs", "body": json.dumps(delivered), "messageId": "m"})
    assert as_lambda == as_body == as_record
    assert as_lambda.id == delivered["id"] and as_lambda.detail == {"task_id": "t1"}
    assert as_lambda.account == "111122223333" and as_lambda.to_dict()["replay-name"] == "r1"
    with pytest.raises(RecordValidationError, match="detail"):
        event_from_eventbridge({"source": "s", "detail-type": "d"})
    with pytest.raises(RecordValidationError):
        event_from_eventbridge("not json")


def test_settings_are_checked(resources: MotoResources) -> None:
    with pytest.raises(ConfigurationError):
        EventBridgeBus("", session=resources.session)
    with pytest.raises(ConfigurationError):
        EventBridgeBus("bus", session=resources.session, attempts=0)
