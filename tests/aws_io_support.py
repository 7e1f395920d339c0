"""moto (in-process) set-up for the S3, SQS and EventBridge adapters: resources made as production makes them.

The bucket is versioned and encrypted by default; the task queue has a dead-letter queue (RedrivePolicy with
``maxReceiveCount``); the bus is a custom bus. ``sqs_follows(clock)`` makes moto's SQS model tell time by an injected
clock, so that tests move visibility timeouts and delays forward without sleeping. moto's SQS model is not
thread-safe (two threads may take the same message; two deletes may undo one another), so ``serialized_sqs()`` lets
one call at a time touch the messages, as SQS guarantees; a long poll waits outside that lock.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import moto.sqs.models as moto_sqs
import pytest
from moto import mock_aws

from blackboard import Backends
from blackboard.adapters.aws import EventBridgeBus, S3CodeStore, SqsTaskQueue

REGION = "us-east-1"
BUCKET = "arbiter-code"
QUEUE = "arbiter-tasks"
BUS = "arbiter"


@dataclass(frozen=True)
class MotoResources:
    """What ``moto_resources`` created."""

    session: Any
    bucket: str
    queue_url: str
    dead_letter_url: str
    bus_name: str

    def client(self, service: str) -> Any:
        return self.session.client(service)


def create_bucket(s3: Any, name: str) -> str:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    return name


def create_queue(sqs: Any, name: str, *, max_receives: int = 3, visibility_timeout: int = 30) -> tuple[str, str]:
    """A queue and its dead-letter queue; returns both URLs."""
    dead_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_arn, "maxReceiveCount": max_receives})
    url = sqs.create_queue(
        QueueName=name,
        Attributes={"VisibilityTimeout": str(visibility_timeout), "RedrivePolicy": redrive},
    )["QueueUrl"]
    return url, dead_url


_sessions: list[Any] = []


def _session() -> Any:
    """One boto3 session for every test: it caches the service models, which take ~0.3 s per service to load."""
    if not _sessions:
        _sessions.append(boto3.session.Session(region_name=REGION))
    return _sessions[0]


@contextmanager
def moto_resources(*, max_receives: int = 3, visibility_timeout: int = 30) -> Iterator[MotoResources]:
    """Start moto and create the bucket, the queue with its dead-letter queue, and the bus."""
    with mock_aws():
        session = _session()
        create_bucket(session.client("s3"), BUCKET)
        url, dead_url = create_queue(
            session.client("sqs"), QUEUE, max_receives=max_receives, visibility_timeout=visibility_timeout
        )
        session.client("events").create_event_bus(Name=BUS)
        yield MotoResources(session, BUCKET, url, dead_url, BUS)


@contextmanager
def sqs_follows(clock: Callable[[], float]) -> Iterator[None]:
    """Make moto's SQS model tell time by ``clock`` (from the real time when this starts).

    Each reading also adds a microsecond: moto compares times strictly (a message nacked with no delay is visible
    only once time has moved past that instant), as if every call took a little real time.
    """
    real_time = moto_sqs.unix_time
    origin: float = real_time()
    start = clock()
    ticks = itertools.count(1)

    def unix_time(dt: Any = None) -> float:
        if dt is not None:
            converted: float = real_time(dt)
            return converted
        return origin + (clock() - start) + next(ticks) * 1e-6

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    with (
        mock.patch.object(moto_sqs, "unix_time", unix_time),
        mock.patch.object(moto_sqs, "unix_time_millis", unix_time_millis),
    ):
        yield


_SQS_CHANGES = (
    "send_message",
    "send_message_batch",
    "delete_message",
    "delete_message_batch",
    "change_message_visibility",
    "change_message_visibility_batch",
)


@contextmanager
def serialized_sqs() -> Iterator[None]:
    """Let one call at a time read or change moto's SQS messages; a long poll waits with the lock released."""
    lock = threading.RLock()  # the batch calls call the single ones
    original_receive = moto_sqs.SQSBackend.receive_message

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        deadline = time.monotonic() + wait_seconds_timeout  # a long poll waits in real time, whatever the clock
        while True:
            with lock:
                got: list[Any] = original_receive(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            self.get_queue(queue_name).wait_for_messages(min(1.0, remaining))

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(moto_sqs.SQSBackend, "receive_message", receive_message))
        for name in _SQS_CHANGES:
            stack.enter_context(
                mock.patch.object(moto_sqs.SQSBackend, name, locked(getattr(moto_sqs.SQSBackend, name)))
            )
        yield


@dataclass(frozen=True)
class MotoBackends(Backends):
    """Backends whose ``close`` also stops moto."""

    stack: ExitStack = field(default_factory=ExitStack, repr=False)

    def close(self) -> None:
        super().close()
        self.stack.close()


def io_adapters(
    resources: MotoResources, queue_clock: Callable[[], float]
) -> tuple[S3CodeStore, SqsTaskQueue, EventBridgeBus]:
    """The three adapters over ``resources``, configured as the conformance suite needs (visibility 30 s)."""
    session = resources.session
    return (
        S3CodeStore(resources.bucket, session=session),
        SqsTaskQueue(resources.queue_url, session=session, visibility_timeout=30, clock=queue_clock),
        EventBridgeBus(resources.bus_name, session=session, retry_base_seconds=0.01),
    )


# ---------------------------------------------------------------- hostile conditions


@pytest.fixture
def no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore retries at once (its standard backoff sleeps up to seconds between attempts)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


class CallCounter:
    """Counts the API calls a client makes (by operation name), from botocore's ``before-call`` event."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        client.meta.events.register("before-call.*.*", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def count(self, operation: str | None = None) -> int:
        return len(self.calls) if operation is None else self.calls.count(operation)

    def reset(self) -> None:
        self.calls.clear()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def answer_with_error(client: Any, operation: str, status: int, body: bytes, headers: dict[str, str]) -> list[int]:
    """Make every HTTP attempt of ``operation`` answer ``status`` with ``body`` (ahead of moto); returns a list that
    grows by one per attempt, so a test sees how often botocore retried."""
    from botocore.awsrequest import AWSResponse

    attempts: list[int] = []

    def respond(request: Any, **_: Any) -> AWSResponse:
        attempts.append(status)
        return AWSResponse(request.url, status, headers, _Raw(body))

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"before-send.{service}.{operation}", respond)
    return attempts


class FlakySqsClient:
    """A fake SQS client over moto's whose ``SendMessageBatch`` refuses chosen entries ``times`` times each.

    ``refuse(entry)`` picks the entries; the others go to moto. ``times=None`` refuses them forever.
    """

    def __init__(
        self,
        real: Any,
        refuse: Callable[[dict[str, Any]], bool],
        *,
        times: int | None = 1,
        code: str = "InternalError",
        sender_fault: bool = False,
    ) -> None:
        self.real = real
        self.refuse = refuse
        self.times = times
        self.code = code
        self.sender_fault = sender_fault
        self.batches: list[list[str]] = []
        self._refused: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _refuses(self, entry_id: str, entry: dict[str, Any]) -> bool:
        if not self.refuse(entry):
            return False
        self._refused[entry_id] = self._refused.get(entry_id, 0) + 1
        return self.times is None or self._refused[entry_id] <= self.times

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append([entry["Id"] for entry in Entries])
        refused = [entry for entry in Entries if self._refuses(entry["Id"], entry)]
        passing = [entry for entry in Entries if entry not in refused]
        response: dict[str, Any] = {"Successful": [], "Failed": []}
        if passing:
            response = self.real.send_message_batch(QueueUrl=QueueUrl, Entries=passing)
        failed = [
            {"Id": entry["Id"], "SenderFault": self.sender_fault, "Code": self.code, "Message": "injected failure"}
            for entry in refused
        ]
        return {"Successful": response.get("Successful", []), "Failed": [*response.get("Failed", []), *failed]}


class FlakyEventsClient:
    """A fake EventBridge client over moto's whose ``PutEvents`` refuses chosen entries ``times`` times each."""

    def __init__(
        self,
        real: Any,
        refuse: Callable[[dict[str, Any]], bool],
        *,
        times: int | None = 1,
        code: str = "InternalFailure",
    ) -> None:
        self.real = real
        self.refuse = refuse
        self.times = times
        self.code = code
        self.batches: list[list[str]] = []
        self._refused: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append([entry["Detail"] for entry in Entries])
        results: list[dict[str, Any] | None] = []
        passing: list[dict[str, Any]] = []
        for entry in Entries:
            detail = entry["Detail"]
            if self.refuse(entry):
                self._refused[detail] = self._refused.get(detail, 0) + 1
                if self.times is None or self._refused[detail] <= self.times:
                    results.append({"ErrorCode": self.code, "ErrorMessage": "injected failure"})
                    continue
            results.append(None)
            passing.append(entry)
        accepted = iter(self.real.put_events(Entries=passing)["Entries"] if passing else [])
        entries = [result if result is not None else next(accepted) for result in results]
        return {"FailedEntryCount": sum(1 for e in entries if "ErrorCode" in e), "Entries": entries}
