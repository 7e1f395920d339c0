"""The TaskQueue port on SQS: a standard queue whose RedrivePolicy moves poison messages to a dead-letter queue."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from blackboard.adapters.aws._batches import Refused, chunks, send_batches
from blackboard.adapters.aws._client_errors import error_code, translated
from blackboard.adapters.aws._clients import make_client
from blackboard.exceptions import ConfigurationError, MessageTooLargeError
from blackboard.ports.task_queue import DeadLetter, QueueStats, Received, TaskQueue

__all__ = ["MAX_MESSAGE_BYTES", "MESSAGE_ID_ATTRIBUTE", "SqsTaskQueue"]

logger = logging.getLogger(__name__)

#: The largest message SQS takes by default (body and message attributes together).
MAX_MESSAGE_BYTES = 262_144
#: The message attribute that carries the port's message id (SQS assigns ids of its own).
MESSAGE_ID_ATTRIBUTE = "arbiter-message-id"
_BATCH = 10
_MAX_DELAY = 900
_MAX_VISIBILITY = 43_200
_MAX_LONG_POLL = 20
#: Seconds a message read by ``dead_letters`` stays hidden in the dead-letter queue before it is made visible again.
_PEEK_SECONDS = 30
#: What SQS answers for a receipt that is no longer good (expired, or its message not in flight any more).
_STALE = frozenset(
    {
        "ReceiptHandleIsInvalid",
        "MessageNotInflight",
        "AWS.SimpleQueueService.MessageNotInflight",
        "InvalidParameterValue",
    }
)
#: How many receipts are remembered to refuse stale and spent ones.
_REMEMBERED = 10_000


def _seconds(value: float) -> int:
    """Whole seconds for SQS, rounding up (float noise of a computed delay does not add a second)."""
    return max(0, math.ceil(round(value, 3)))


class SqsTaskQueue(TaskQueue):
    """A task queue on SQS; the queue's RedrivePolicy dead-letters a message after ``maxReceiveCount`` receives.

    The port's message ids travel in the ``arbiter-message-id`` message attribute (a body relayed from elsewhere
    without it gets the SQS message id). ``receive`` long-polls up to ``wait_seconds`` per call. A receipt that this
    process has acked or nacked, or that was superseded by a later delivery of the same message to this process, is
    refused locally (``False``) without calling SQS: SQS itself accepts an outdated receipt handle. Delivery is at
    least once, as on every adapter; the blackboard's conditional claims keep a task from running twice.

    API calls: ``send`` of N messages ``ceil(N / 10)`` ``SendMessageBatch`` (more when over 256 KiB in a batch, plus
    one per retry of refused entries); ``receive`` 1 ``ReceiveMessage`` per long poll; ``ack`` 1 ``DeleteMessage``;
    ``nack`` 1 ``ChangeMessageVisibility``; ``dead_letter`` 1 ``SendMessage`` to the dead-letter queue, then 1
    ``DeleteMessage`` (in that order: a failure in between leaves a copy behind, never loses the message);
    ``stats`` 2 ``GetQueueAttributes``; ``dead_letters`` one
    ``ReceiveMessage`` per 10 messages and one ``ChangeMessageVisibilityBatch`` per 10 to show them again. The first
    use of ``stats``, ``dead_letters`` or ``max_receives`` reads the RedrivePolicy (2 calls, once).

    Args:
        queue_url: the queue's URL.
        client: an SQS client (else one from ``session``, else from the default session).
        session: a boto3 session to create the client from.
        dead_letter_queue_url: the dead-letter queue's URL; read from the RedrivePolicy when omitted.
        visibility_timeout: seconds a received message stays invisible (SQS takes whole seconds; rounded up).
        wait_seconds: the longest single long poll (1-20 s); a ``receive`` that waits longer polls again.
        send_attempts: attempts for each entry a ``SendMessageBatch`` refuses before it is reported.
        retry_base_seconds: the backoff before the second attempt (doubling, with jitter).
        max_message_bytes: the largest message sent; larger ones raise :class:`MessageTooLargeError`.
        clock: seconds since the epoch, to turn the port's ``visible_at`` times into SQS delays.
    """

    def __init__(
        self,
        queue_url: str,
        *,
        client: Any = None,
        session: Any = None,
        dead_letter_queue_url: str | None = None,
        visibility_timeout: float = 60.0,
        wait_seconds: int = _MAX_LONG_POLL,
        send_attempts: int = 4,
        retry_base_seconds: float = 0.1,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not queue_url:
            raise ConfigurationError("SqsTaskQueue needs the queue URL")
        if not 1 <= wait_seconds <= _MAX_LONG_POLL:
            raise ConfigurationError(f"wait_seconds must be between 1 and {_MAX_LONG_POLL} (an SQS long poll)")
        if visibility_timeout > _MAX_VISIBILITY:
            raise ConfigurationError(f"SQS takes a visibility timeout of at most {_MAX_VISIBILITY} seconds")
        if send_attempts < 1:
            raise ConfigurationError("send_attempts must be at least 1")
        super().__init__(visibility_timeout=visibility_timeout, clock=clock)
        # The queue's RedrivePolicy decides; it is read on first use (no I/O here).
        self._max_receives: int | None = None
        self.queue_url = queue_url
        self.client = make_client("sqs", client=client, session=session)
        self.wait_seconds = wait_seconds
        self.send_attempts = send_attempts
        self.max_message_bytes = max_message_bytes
        self._retry_base_seconds = retry_base_seconds
        self._dead_letter_url = dead_letter_queue_url
        self._lock = threading.Lock()
        self._latest: OrderedDict[str, str] = OrderedDict()  # message id -> its newest receipt seen here
        self._owner: OrderedDict[str, str] = OrderedDict()  # receipt -> message id
        self._spent: OrderedDict[str, None] = OrderedDict()  # receipts acked or nacked here

    # ---------------------------------------------------------------- the queue's own settings

    @property
    def max_receives(self) -> int:
        """Deliveries before SQS moves a message to the dead-letter queue (the RedrivePolicy's maxReceiveCount)."""
        if self._max_receives is None:
            self._read_redrive_policy()
        assert self._max_receives is not None
        return self._max_receives

    @max_receives.setter
    def max_receives(self, value: int) -> None:
        self._max_receives = value

    def _read_redrive_policy(self) -> None:
        with translated(f"SQS GetQueueAttributes {self.queue_url}"):
            attributes = self.client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"])
        raw = attributes.get("Attributes", {}).get("RedrivePolicy")
        if not raw:
            raise ConfigurationError(
                f"the queue {self.queue_url} has no RedrivePolicy: give it a dead-letter queue and a maxReceiveCount"
                " so that a poison message cannot loop forever"
            )
        policy = json.loads(raw)
        self._max_receives = int(policy["maxReceiveCount"])
        if self._dead_letter_url is None:
            # arn:aws:sqs:<region>:<account>:<name>
            _, _, _, _, account, name = str(policy["deadLetterTargetArn"]).split(":", 5)
            with translated(f"SQS GetQueueUrl {name}"):
                found = self.client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._dead_letter_url = str(found["QueueUrl"])

    def _dead_letter_queue(self) -> str:
        if self._dead_letter_url is None or self._max_receives is None:
            self._read_redrive_policy()
        assert self._dead_letter_url is not None
        return self._dead_letter_url

    # ---------------------------------------------------------------- receiving (long polls)

    def receive(
        self, max_messages: int = 10, *, wait_seconds: float = 0.0, visibility_timeout: float | None = None
    ) -> list[Received]:
        """Receive up to ``max_messages`` messages, long-polling SQS for up to ``wait_seconds`` for the first one."""
        if not 1 <= max_messages <= _BATCH:
            raise ConfigurationError("max_messages must be between 1 and 10")
        timeout = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        deadline = time.monotonic() + wait_seconds
        while True:
            remaining = deadline - time.monotonic()
            received = self._receive_polling(max_messages, timeout, min(self.wait_seconds, max(0, int(remaining))))
            remaining = deadline - time.monotonic()
            if received or remaining <= 0:
                return received
            if remaining < 1:
                self._wait(remaining)  # SQS long polls last whole seconds: sleep off the fraction

    def _receive(self, max_messages: int, visibility_timeout: float) -> list[Received]:
        return self._receive_polling(max_messages, visibility_timeout, 0)

    def _receive_polling(self, max_messages: int, visibility_timeout: float, poll_seconds: int) -> list[Received]:
        with translated(f"SQS ReceiveMessage {self.queue_url}"):
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                VisibilityTimeout=_seconds(visibility_timeout),
                WaitTimeSeconds=poll_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
                MessageAttributeNames=[MESSAGE_ID_ATTRIBUTE],
            )
        received: list[Received] = []
        with self._lock:
            for message in response.get("Messages", []):
                message_id = _message_id(message)
                receipt = str(message["ReceiptHandle"])
                _remember(self._latest, message_id, receipt)
                _remember(self._owner, receipt, message_id)
                count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
                received.append(Received(message_id, receipt, str(message["Body"]), count))
        return received

    def _wait(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    # ---------------------------------------------------------------- sending

    def _send(self, items: list[tuple[str, str]], visible_at: float) -> None:
        delay = _seconds(visible_at - self._clock())
        if delay > _MAX_DELAY:
            raise ConfigurationError(f"SQS delays a message by at most {_MAX_DELAY} seconds, not {delay}")
        entries: list[dict[str, Any]] = []
        sizes: list[int] = []
        for message_id, body in items:
            entry: dict[str, Any] = {
                "Id": message_id,
                "MessageBody": body,
                "MessageAttributes": {MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": message_id}},
            }
            if delay:
                entry["DelaySeconds"] = delay
            size = len(body.encode()) + len(MESSAGE_ID_ATTRIBUTE) + len("String") + len(message_id)
            if size > self.max_message_bytes:
                raise MessageTooLargeError("QueueMessage", f"message {message_id}", size, self.max_message_bytes, "SQS")
            entries.append(entry)
            sizes.append(size)
        batches = chunks(entries, sizes, max_count=_BATCH, max_bytes=self.max_message_bytes)
        send_batches(
            "SQS SendMessageBatch",
            batches,
            lambda entry: str(entry["Id"]),
            self._send_batch,
            attempts=self.send_attempts,
            base_seconds=self._retry_base_seconds,
        )
        logger.debug("queue=<%s>, messages=<%d>, batches=<%d> | sent", self.queue_url, len(entries), len(batches))

    def _send_batch(self, entries: list[dict[str, Any]]) -> Refused:
        with translated(f"SQS SendMessageBatch {self.queue_url}"):
            response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        return {
            str(failed["Id"]): (str(failed.get("Code", "")), str(failed.get("Message", "")), not failed["SenderFault"])
            for failed in response.get("Failed", [])
        }

    # ---------------------------------------------------------------- ack / nack

    def _take(self, receipt: str) -> bool:
        """Mark ``receipt`` spent; ``False`` if it already was, or a later delivery here superseded it."""
        with self._lock:
            if receipt in self._spent:
                return False
            message_id = self._owner.get(receipt)
            if message_id is not None and self._latest.get(message_id) != receipt:
                return False
            _remember(self._spent, receipt, None)
            return True

    def _give_back(self, receipt: str) -> None:
        with self._lock:
            self._spent.pop(receipt, None)

    def _ack(self, receipt: str) -> bool:
        return self._settle(receipt, "DeleteMessage", lambda: self.client.delete_message(**self._at(receipt)))

    def _nack(self, receipt: str, visible_at: float) -> bool:
        delay = _seconds(visible_at - self._clock())
        if delay > _MAX_VISIBILITY:
            raise ConfigurationError(f"SQS hides a message for at most {_MAX_VISIBILITY} seconds, not {delay}")
        return self._settle(
            receipt,
            "ChangeMessageVisibility",
            lambda: self.client.change_message_visibility(**self._at(receipt), VisibilityTimeout=delay),
        )

    def _dead_letter(self, received: Received) -> bool:
        url = self._dead_letter_queue()

        def move() -> None:
            attributes = {MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": received.message_id}}
            self.client.send_message(QueueUrl=url, MessageBody=received.body, MessageAttributes=attributes)
            self.client.delete_message(**self._at(received.receipt))

        return self._settle(received.receipt, "SendMessage (dead-letter queue) and DeleteMessage", move)

    def _at(self, receipt: str) -> dict[str, str]:
        return {"QueueUrl": self.queue_url, "ReceiptHandle": receipt}

    def _settle(self, receipt: str, operation: str, call: Callable[[], object]) -> bool:
        from botocore.exceptions import ClientError

        if not self._take(receipt):
            return False
        try:
            with translated(f"SQS {operation} {self.queue_url}"):
                try:
                    call()
                except ClientError as exc:
                    if error_code(exc) in _STALE:
                        return False
                    raise
        except Exception:
            self._give_back(receipt)  # the call did not happen: the receipt may be used again
            raise
        return True

    # ---------------------------------------------------------------- dead letters and counts

    def _dead_letters(self, limit: int) -> list[DeadLetter]:
        url = self._dead_letter_queue()
        found: dict[str, tuple[int, DeadLetter]] = {}
        receipts: list[str] = []
        try:
            while len(found) < limit:
                with translated(f"SQS ReceiveMessage {url}"):
                    response = self.client.receive_message(
                        QueueUrl=url,
                        MaxNumberOfMessages=min(_BATCH, limit - len(found)),
                        VisibilityTimeout=_PEEK_SECONDS,
                        WaitTimeSeconds=0,
                        MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                        MessageAttributeNames=[MESSAGE_ID_ATTRIBUTE],
                    )
                messages = response.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    receipts.append(str(message["ReceiptHandle"]))
                    attributes = message.get("Attributes", {})
                    # The receive count carries over into the dead-letter queue, and reading it there (as here)
                    # counts too: deliveries from the task queue are the count less this read, at most the
                    # RedrivePolicy's maxReceiveCount (after which SQS moved it).
                    count = min(int(attributes.get("ApproximateReceiveCount", 1)) - 1, self.max_receives)
                    message_id = _message_id(message)
                    sent = int(attributes.get("SentTimestamp", 0))
                    found.setdefault(message_id, (sent, DeadLetter(message_id, str(message["Body"]), count)))
        finally:
            self._show_again(url, receipts)
        return [letter for _, letter in sorted(found.values(), key=lambda pair: pair[0])][:limit]

    def _show_again(self, url: str, receipts: list[str]) -> None:
        for start in range(0, len(receipts), _BATCH):
            entries = [
                {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                for index, receipt in enumerate(receipts[start : start + _BATCH])
            ]
            with translated(f"SQS ChangeMessageVisibilityBatch {url}"):
                self.client.change_message_visibility_batch(QueueUrl=url, Entries=entries)

    def _stats(self) -> QueueStats:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        dead_url = self._dead_letter_queue()
        with translated(f"SQS GetQueueAttributes {self.queue_url}"):
            main = self.client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=[*names, "ApproximateNumberOfMessagesDelayed"]
            )["Attributes"]
        with translated(f"SQS GetQueueAttributes {dead_url}"):
            dead = self.client.get_queue_attributes(QueueUrl=dead_url, AttributeNames=names)["Attributes"]
        return QueueStats(
            visible=int(main["ApproximateNumberOfMessages"]) + int(main["ApproximateNumberOfMessagesDelayed"]),
            in_flight=int(main["ApproximateNumberOfMessagesNotVisible"]),
            dead=int(dead["ApproximateNumberOfMessages"]) + int(dead["ApproximateNumberOfMessagesNotVisible"]),
        )


def _message_id(message: dict[str, Any]) -> str:
    attribute = message.get("MessageAttributes", {}).get(MESSAGE_ID_ATTRIBUTE, {})
    return str(attribute.get("StringValue") or message["MessageId"])


def _remember(memory: OrderedDict[str, Any], key: str, value: Any) -> None:
    memory[key] = value
    memory.move_to_end(key)
    while len(memory) > _REMEMBERED:
        memory.popitem(last=False)
