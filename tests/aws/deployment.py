"""The deployed system on moto: the stack's resources, and a pump that plays Lambda's part between them.

moto cannot invoke Lambda targets, so every rule targets an SQS queue here and :class:`MotoDeployment` delivers
what arrives there to the real handlers with real-shaped events: EventBridge events to the arbiter function, SQS
batches to the wrapper and Fabricator functions (deleting what succeeded, as Lambda's event source mapping does).
Also used by ``bench/aws_calls.py`` to count API calls.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from tests.aws_support import create_tables

REGION = "us-east-1"
ACCOUNT = "123456789012"
INGRESS_PATTERN = {"source": [{"anything-but": ["arbiter", "arbiter.wrapper", "arbiter.fabricator"]}]}
COMPLETION_PATTERN = {"source": ["arbiter.wrapper", "arbiter.fabricator"], "detail-type": ["task.completed"]}
BUS_TRIGGERS_PATTERN = {"source": ["arbiter.fabricator"], "detail-type": ["agent.published"]}
RESULTS_PATTERN = {"source": ["arbiter"], "detail-type": ["orchestration.completed", "orchestration.failed"]}


class FakeLambdaContext:
    """A stand-in for Lambda's context object (what Powertools reads from it)."""

    function_name = "arbiter-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:arbiter-test"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


class CallCounter:
    """Counts AWS API calls made through a boto3 session (``before-call`` hook), by ``service.Operation``."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.enabled = True

    def __call__(self, model: Any, **_: Any) -> None:
        if self.enabled:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def total(self, prefix: str = "") -> int:
        return sum(n for name, n in self.calls.items() if name.startswith(prefix))

    @contextmanager
    def paused(self) -> Iterator[None]:
        self.enabled = False
        try:
            yield
        finally:
            self.enabled = True


@dataclass
class MotoDeployment:
    """Creates the stack's resources on moto (inside an active ``mock_aws``) and names them as the stack does."""

    name: str = "arbiter"
    max_receives: int = 3
    env: dict[str, str] = field(default_factory=dict)
    queues: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        session = boto3.session.Session(region_name=REGION)
        self.sqs = session.client("sqs")
        self.events = session.client("events")
        s3 = session.client("s3")
        tables = {"blackboard": f"{self.name}-blackboard", "registry": f"{self.name}-registry"}
        create_tables(session.client("dynamodb"), tables["blackboard"], tables["registry"])
        for bucket in ("code", "payload"):
            s3.create_bucket(Bucket=f"{self.name}-{bucket}")
            s3.put_bucket_versioning(Bucket=f"{self.name}-{bucket}", VersioningConfiguration={"Status": "Enabled"})
        for queue in ("task", "fabrication", "ingress", "completions", "results"):
            self.queues[queue] = self._queue(f"{self.name}-{queue}")
        bus = f"{self.name}-bus"
        self.events.create_event_bus(Name=bus)
        for rule, pattern, queue in (
            ("ingress", INGRESS_PATTERN, "ingress"),
            ("completions", COMPLETION_PATTERN, "completions"),
            ("bus-triggers", BUS_TRIGGERS_PATTERN, "ingress"),  # the stack's BusTriggers rule: to the arbiter too
            ("results", RESULTS_PATTERN, "results"),
        ):
            self.events.put_rule(Name=f"{self.name}-{rule}", EventBusName=bus, EventPattern=json.dumps(pattern))
            arn = self.sqs.get_queue_attributes(QueueUrl=self.queues[queue], AttributeNames=["QueueArn"])
            self.events.put_targets(
                Rule=f"{self.name}-{rule}",
                EventBusName=bus,
                Targets=[{"Id": queue, "Arn": arn["Attributes"]["QueueArn"]}],
            )
        self.bus = bus
        self.env = {
            "AWS_DEFAULT_REGION": REGION,
            "ARBITER_BLACKBOARD_TABLE": tables["blackboard"],
            "ARBITER_REGISTRY_TABLE": tables["registry"],
            "ARBITER_CODE_BUCKET": f"{self.name}-code",
            "ARBITER_PAYLOAD_BUCKET": f"{self.name}-payload",
            "ARBITER_TASK_QUEUE_URL": self.queues["task"],
            "ARBITER_FABRICATION_QUEUE_URL": self.queues["fabrication"],
            "ARBITER_BUS_NAME": bus,
            "POWERTOOLS_METRICS_NAMESPACE": "ArbiterTest",
            "POWERTOOLS_SERVICE_NAME": "arbiter-test",
        }

    def _queue(self, name: str) -> str:
        dlq = self.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.queues[f"{name.removeprefix(self.name + '-')}-dlq"] = dlq
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(self.max_receives)})
        url: str = self.sqs.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": "720", "RedrivePolicy": redrive}
        )["QueueUrl"]
        return url

    # ---------------------------------------------------------------- playing Lambda's part

    def put_event(self, event: dict[str, Any]) -> str:
        """Publish an event to the bus as a user would (``PutEvents``); return EventBridge's id for it."""
        entry = {
            "Source": event["source"],
            "DetailType": event["detail-type"],
            "Detail": json.dumps(event.get("detail", {})),
            "EventBusName": self.bus,
        }
        result = self.events.put_events(Entries=[entry])
        assert result["FailedEntryCount"] == 0, result
        event_id: str = result["Entries"][0]["EventId"]
        return event_id

    def drain(self, queue: str, max_messages: int = 10) -> list[dict[str, Any]]:
        """Receive (without deleting) what waits on a queue: raw SQS messages."""
        got = self.sqs.receive_message(
            QueueUrl=self.queues[queue],
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            VisibilityTimeout=720,
        )
        messages: list[dict[str, Any]] = got.get("Messages", [])
        return messages

    def deliver_events(self, queue: str, handler: Callable[[dict[str, Any], Any], Any]) -> list[Any]:
        """Hand each EventBridge event waiting on ``queue`` to ``handler`` as Lambda would; delete the handled."""
        results = []
        for message in self.drain(queue):
            event = json.loads(message["Body"])
            # moto's SQS targets leave out two fields that EventBridge always delivers.
            event.setdefault("account", ACCOUNT)
            event.setdefault("region", REGION)
            results.append(handler(event, FakeLambdaContext()))
            self.sqs.delete_message(QueueUrl=self.queues[queue], ReceiptHandle=message["ReceiptHandle"])
        return results

    def deliver_batch(self, queue: str, handler: Callable[[dict[str, Any], Any], Any]) -> dict[str, Any] | None:
        """Hand one SQS batch to ``handler`` as the event source mapping would; delete the records that succeeded."""
        messages = self.drain(queue)
        if not messages:
            return None
        response: dict[str, Any] = handler(self.sqs_event(queue, messages), FakeLambdaContext())
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queues[queue], ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queues[queue], ReceiptHandle=message["ReceiptHandle"])
        return response

    def sqs_event(self, queue: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The event Lambda's SQS event source mapping sends for ``messages``."""
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.queues[queue].rsplit('/', 1)[-1]}"
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {
                        "ApproximateReceiveCount": m.get("Attributes", {}).get("ApproximateReceiveCount", "1"),
                        "SentTimestamp": m.get("Attributes", {}).get("SentTimestamp", "0"),
                        "SenderId": "AIDAEXAMPLE",
                        "ApproximateFirstReceiveTimestamp": m.get("Attributes", {}).get(
                            "ApproximateFirstReceiveTimestamp", "0"
                        ),
                    },
                    "messageAttributes": {},
                    "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }

    def pump(
        self,
        arbiter: Callable[[dict[str, Any], Any], Any],
        wrapper: Callable[[dict[str, Any], Any], Any],
        fabricator: Callable[[dict[str, Any], Any], Any] | None = None,
        *,
        rounds: int = 50,
    ) -> int:
        """Deliver everything until no queue has work left; return how many rounds it took."""
        for round_ in range(rounds):
            moved = len(self.deliver_events("ingress", arbiter))
            while self.deliver_batch("task", wrapper) is not None:
                moved += 1
            if fabricator is not None:
                while self.deliver_batch("fabrication", fabricator) is not None:
                    moved += 1
            moved += len(self.deliver_events("completions", arbiter))
            if not moved:
                return round_
        raise AssertionError(f"still moving after {rounds} rounds")
