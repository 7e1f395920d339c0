"""Completions from any process reach a coordinator: the durable queue in the home carries them.

An ``arbiter worker`` process executes tasks but coordinates nothing: the completion events its executor emits go
to its own in-process bus, where no coordinator listens. :func:`relay_completions` puts each completion that needs
a coordinator (one that closes its wave, or one whose result the wrapper could not record) on the ``completions``
queue of the shared SQLite home; every :class:`~arbiter.LocalRuntime` with ``queue="sqlite"`` serves that queue
(:func:`serve_completions`) and hands each event to its coordinator at once, instead of waiting for its watchdog's
``stalled_after``. The queue is durable: a completion sent before a runtime starts (or while it was down) is served
when it starts. Handling a completion twice is harmless (the coordinator's writes are conditional).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from blackboard import CompletionEvent, Event, EventBus, RecordValidationError, Subscription, TaskQueue
from blackboard.messages import COMPLETION_DETAIL_TYPE, COMPLETION_SOURCE

__all__ = ["COMPLETIONS_QUEUE", "relay_completions", "serve_completions"]

logger = logging.getLogger(__name__)

#: The name of the queue (in the home's SQLite store) that carries completions between processes.
COMPLETIONS_QUEUE = "completions"
#: How long a completion whose handling failed waits before it is tried again.
_RETRY_SECONDS = 1.0


def relay_completions(bus: EventBus, queue: TaskQueue) -> Subscription:
    """Send the completions emitted on ``bus`` that need a coordinator to ``queue``; return the subscription."""

    def relay(event: Event) -> None:
        completion = CompletionEvent.parse(event.detail)
        if completion.closes_wave or not completion.recorded:
            queue.send_raw([event.to_json()])

    return bus.subscribe(
        {"source": [COMPLETION_SOURCE], "detail-type": [COMPLETION_DETAIL_TYPE]}, relay, name="completion-relay"
    )


def serve_completions(
    queue: TaskQueue, handle: Callable[[Event], None], stop: threading.Event, *, wait_seconds: float = 0.5
) -> None:
    """Hand every completion event on ``queue`` to ``handle`` until ``stop`` is set.

    An unreadable message goes back to the queue (dead-lettered after its ``max_receives``); a completion whose
    handling raised is tried again after a second.
    """
    while not stop.is_set():
        for received in queue.receive(10, wait_seconds=wait_seconds):
            try:
                event = Event.parse_json(received.body)
            except RecordValidationError as exc:
                logger.warning("message_id=<%s> | unreadable completion: %s", received.message_id, exc)
                queue.nack(received.receipt)
                continue
            try:
                handle(event)
            except Exception:
                logger.exception("message_id=<%s> | handling a relayed completion raised", received.message_id)
                queue.nack(received.receipt, delay_seconds=_RETRY_SECONDS)
                continue
            queue.ack(received.receipt)
