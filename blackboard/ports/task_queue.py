"""The ``TaskQueue`` port: at-least-once delivery with visibility timeouts and a dead-letter queue (SQS semantics).

A received message stays invisible for the visibility timeout; ``ack`` deletes it, ``nack`` makes it visible again
(after an optional delay), and doing neither makes it visible again when the timeout passes. A message received
more than ``max_receives`` times is moved to the dead-letter queue instead of being delivered again, so a poison
message cannot loop forever; ``dead_letter`` moves a received message there at once (one that no delivery can ever
serve, such as a message for a task that does not exist).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from blackboard._base import new_id
from blackboard.exceptions import ConfigurationError, RecordValidationError
from blackboard.messages import FabricationRequest, TaskMessage

__all__ = ["DeadLetter", "QueueMessage", "QueueStats", "Received", "TaskQueue", "parse_queue_message"]

#: What task queues carry, told apart by their ``schema`` field.
QueueMessage = Annotated[TaskMessage | FabricationRequest, Field(discriminator="schema_")]
_QUEUE_MESSAGE: TypeAdapter[TaskMessage | FabricationRequest] = TypeAdapter(QueueMessage)


def parse_queue_message(body: str) -> TaskMessage | FabricationRequest:
    """Parse a queue body.

    Raises:
        RecordValidationError: the body is not a known message (a poison message).
    """
    try:
        return _QUEUE_MESSAGE.validate_json(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise RecordValidationError("QueueMessage", field, error["msg"]) from None


@dataclass(frozen=True, slots=True)
class Received:
    """A delivered message. ``receipt`` identifies this delivery for ``ack``/``nack``."""

    message_id: str
    receipt: str
    body: str
    receive_count: int

    @property
    def message(self) -> TaskMessage | FabricationRequest:
        """The parsed message; raises :class:`RecordValidationError` for a poison body."""
        return parse_queue_message(self.body)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message moved to the dead-letter queue."""

    message_id: str
    body: str
    receive_count: int


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Approximate counts, as SQS reports them."""

    visible: int
    in_flight: int
    dead: int


class TaskQueue(abc.ABC):
    """A named queue with a dead-letter queue. Subclasses implement the ``_``-prefixed primitives.

    Args:
        max_receives: deliveries of one message before it moves to the dead-letter queue.
        visibility_timeout: seconds a received message stays invisible unless acked or nacked.
        clock: seconds since the epoch; injected so tests can move time. Shared-file adapters need wall time.
    """

    def __init__(
        self,
        *,
        max_receives: int = 5,
        visibility_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_receives < 1:
            raise ConfigurationError("max_receives must be at least 1")
        if visibility_timeout <= 0:
            raise ConfigurationError("visibility_timeout must be positive")
        self.max_receives = max_receives
        self.visibility_timeout = visibility_timeout
        self._clock = clock

    def send(self, messages: Sequence[TaskMessage | FabricationRequest], *, delay_seconds: float = 0.0) -> list[str]:
        """Enqueue messages (in one batch where the backend allows) and return their message ids."""
        if delay_seconds < 0:
            raise ConfigurationError("delay_seconds cannot be negative")
        return self.send_raw([m.to_json() for m in messages], delay_seconds=delay_seconds)

    def send_raw(self, bodies: Sequence[str], *, delay_seconds: float = 0.0) -> list[str]:
        """Enqueue raw bodies as they are (for relaying messages from elsewhere; tests use it for poison)."""
        items = [(new_id(), body) for body in bodies]
        if items:
            self._send(items, self._clock() + delay_seconds)
        return [message_id for message_id, _ in items]

    def receive(
        self, max_messages: int = 10, *, wait_seconds: float = 0.0, visibility_timeout: float | None = None
    ) -> list[Received]:
        """Receive up to ``max_messages`` visible messages, waiting up to ``wait_seconds`` for the first one."""
        if not 1 <= max_messages <= 10:
            raise ConfigurationError("max_messages must be between 1 and 10")
        timeout = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        deadline = time.monotonic() + wait_seconds
        while True:
            received = self._receive(max_messages, timeout)
            remaining = deadline - time.monotonic()
            if received or remaining <= 0:
                return received
            self._wait(remaining)

    def ack(self, receipt: str) -> bool:
        """Delete a received message; ``False`` if the receipt is stale (redelivered since, or already acked)."""
        return self._ack(receipt)

    def nack(self, receipt: str, *, delay_seconds: float = 0.0) -> bool:
        """Make a received message visible again after ``delay_seconds``; ``False`` if the receipt is stale."""
        if delay_seconds < 0:
            raise ConfigurationError("delay_seconds cannot be negative")
        return self._nack(receipt, self._clock() + delay_seconds)

    def dead_letter(self, received: Received) -> bool:
        """Move a received message to the dead-letter queue now; ``False`` if its receipt is stale or spent.

        For a message no later delivery can serve (a task that does not exist): it is not delivered again and waits
        in the dead-letter queue with its body, like one that exhausted ``max_receives``.
        """
        return self._dead_letter(received)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Return up to ``limit`` messages in the dead-letter queue, oldest first."""
        return self._dead_letters(limit)

    def stats(self) -> QueueStats:
        """Return the counts of visible, in-flight and dead-lettered messages."""
        return self._stats()

    def _receipt(self) -> str:
        return new_id()

    def _to_dead_letter(self, receive_count: int) -> bool:
        """Whether a message about to be delivered for the ``receive_count``-th time goes to the DLQ instead."""
        return receive_count > self.max_receives

    # ---------------------------------------------------------------- primitives

    @abc.abstractmethod
    def _send(self, items: list[tuple[str, str]], visible_at: float) -> None:
        """Store ``(message_id, body)`` pairs, visible from ``visible_at``."""

    @abc.abstractmethod
    def _receive(self, max_messages: int, visibility_timeout: float) -> list[Received]:
        """Atomically take visible messages and return them.

        Bump each receive count, move messages past ``max_receives`` to the dead-letter queue, and hide the rest for
        ``visibility_timeout`` under a fresh receipt.
        """

    @abc.abstractmethod
    def _wait(self, seconds: float) -> None:
        """Block up to ``seconds`` or until a send may have made a message visible."""

    @abc.abstractmethod
    def _ack(self, receipt: str) -> bool:
        """Delete the message holding ``receipt``."""

    @abc.abstractmethod
    def _nack(self, receipt: str, visible_at: float) -> bool:
        """Make the message holding ``receipt`` visible at ``visible_at`` and void the receipt."""

    @abc.abstractmethod
    def _dead_letter(self, received: Received) -> bool:
        """Move the message holding ``received.receipt`` to the dead-letter queue and void the receipt."""

    @abc.abstractmethod
    def _dead_letters(self, limit: int) -> list[DeadLetter]:
        """Return dead-lettered messages, oldest first."""

    @abc.abstractmethod
    def _stats(self) -> QueueStats:
        """Return the counts."""
