"""The long-running worker loop: pull task messages from any ``TaskQueue`` and execute them, N at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from blackboard import (
    FabricationRequest,
    OrchestrationNotFoundError,
    RecordValidationError,
    TaskMessage,
    TaskNotFoundError,
    TaskQueue,
)
from wrapper.executor import Executor
from wrapper.trusted_calls import standing_by

__all__ = ["WorkerStats", "run_worker", "serve_queue"]

_M = TypeVar("_M", TaskMessage, FabricationRequest)

logger = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    """What a worker loop did.

    Attributes:
        executed: messages whose task this worker claimed and completed.
        dropped: messages whose claim did not apply (duplicates, stale attempts): acknowledged, nothing run.
        rejected: messages that could not be read (poison) or were not task messages: returned to the queue, which
            dead-letters them after its ``max_receives``; and messages for a task that does not exist: moved to the
            dead-letter queue at once (no later delivery can find the task: tasks are written before they are sent).
        errors: messages whose execution raised unexpectedly: returned to the queue with a delay.
    """

    executed: int = 0
    dropped: int = 0
    rejected: int = 0
    errors: int = 0

    def total(self) -> int:
        """All messages handled."""
        return self.executed + self.dropped + self.rejected + self.errors


def run_worker(
    queue: TaskQueue,
    executor: Executor,
    *,
    concurrency: int = 2,
    stop: threading.Event | None = None,
    wait_seconds: float = 1.0,
    max_messages: int | None = None,
    retry_delay_seconds: float = 5.0,
    visibility_seconds: float | None = None,
) -> WorkerStats:
    """Execute task messages from ``queue`` until ``stop`` is set (or ``max_messages`` were handled).

    Each of ``concurrency`` threads receives one message at a time, so a slow task never holds others invisible.
    A message is acknowledged after its completion was emitted; if the process dies first, the queue delivers it
    again after its visibility timeout and the conditional claim keeps the attempt from running twice.

    Args:
        queue: where task messages come from.
        executor: what runs them.
        concurrency: how many tasks run at once (size the sandbox pool to match).
        stop: set it to end the loop; the threads finish their current task first.
        wait_seconds: how long one receive waits for a message.
        max_messages: stop after handling this many messages (for tests and one-shot runs).
        retry_delay_seconds: how long a message whose execution raised stays invisible before it is tried again.
        visibility_seconds: how long a received message stays invisible before the queue delivers it again (longer
            than any task runs); default: the queue's own visibility timeout.

    Returns:
        The counts of what the loop did.
    """
    return serve_queue(
        queue,
        TaskMessage,
        executor.execute,
        concurrency=concurrency,
        stop=stop,
        wait_seconds=wait_seconds,
        max_messages=max_messages,
        retry_delay_seconds=retry_delay_seconds,
        visibility_seconds=visibility_seconds,
    )


def serve_queue(
    queue: TaskQueue,
    kind: type[_M],
    handle: Callable[[_M], object | None],
    *,
    concurrency: int = 1,
    stop: threading.Event | None = None,
    wait_seconds: float = 1.0,
    max_messages: int | None = None,
    retry_delay_seconds: float = 5.0,
    visibility_seconds: float | None = None,
) -> WorkerStats:
    """Hand every message of type ``kind`` from ``queue`` to ``handle``; the loop under :func:`run_worker`.

    ``handle`` returns ``None`` when the message's task was not claimed (counted as dropped). Unreadable messages
    and messages of another type go back to the queue, which dead-letters them after its ``max_receives``; a
    message whose task or orchestration does not exist goes to the dead-letter queue at once, with one log line.

    Each worker thread may run trusted calls itself (``wrapper.trusted_calls.standing_by``): when one is given up at
    its timeout, a new worker thread takes its place at once, and the old one leaves when the call returns. Workers
    still inside a call that was given up are not waited for: this function returns when the others have stopped.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    if visibility_seconds is not None and visibility_seconds <= 0:
        raise ValueError("visibility_seconds must be positive")
    stop = stop or threading.Event()
    stats = WorkerStats()
    lock = threading.Lock()

    def count(field: str) -> None:
        with lock:
            setattr(stats, field, getattr(stats, field) + 1)
            if max_messages is not None and stats.total() >= max_messages:
                stop.set()

    threads: list[threading.Thread] = []
    stepped_aside: set[threading.Thread] = set()

    def start_worker() -> None:
        thread = threading.Thread(target=loop, name=f"arbiter-worker-{len(threads)}", daemon=True)
        threads.append(thread)
        thread.start()

    def loop() -> None:
        me = threading.current_thread()

        def step_aside() -> None:
            # A trusted call on this thread was given up (its attempt is ended from another thread): another worker
            # takes this one's place now, and this thread leaves once the call returns (it is never waited for).
            with lock:
                stepped_aside.add(me)
                if not stop.is_set():
                    start_worker()

        with standing_by(step_aside):
            _serve(me)

    def _serve(me: threading.Thread) -> None:
        while not stop.is_set() and me not in stepped_aside:
            for received in queue.receive(1, wait_seconds=wait_seconds, visibility_timeout=visibility_seconds):
                if stop.is_set():
                    # Received while stopping: back to the queue untouched, for the next worker (never claimed here
                    # while the executor is closing).
                    queue.nack(received.receipt)
                    continue
                try:
                    message = received.message
                except RecordValidationError as exc:
                    logger.warning("message_id=<%s> | unreadable message: %s", received.message_id, exc)
                    queue.nack(received.receipt)
                    count("rejected")
                    continue
                if not isinstance(message, kind):
                    logger.warning(
                        "message_id=<%s> | not a %s: %s", received.message_id, kind.__name__, message.schema_
                    )
                    queue.nack(received.receipt)
                    count("rejected")
                    continue
                try:
                    done = handle(message)
                except (TaskNotFoundError, OrchestrationNotFoundError) as exc:
                    logger.warning(
                        "task_id=<%s>, message_id=<%s> | %s: moved to the dead-letter queue",
                        message.task_id,
                        received.message_id,
                        exc,
                    )
                    queue.dead_letter(received)
                    count("rejected")
                    continue
                except Exception:
                    logger.exception("task_id=<%s> | handling raised; returning the message", message.task_id)
                    queue.nack(received.receipt, delay_seconds=retry_delay_seconds)
                    count("errors")
                    continue
                queue.ack(received.receipt)
                count("executed" if done is not None else "dropped")

    with lock:
        for _ in range(concurrency):
            start_worker()
    while True:  # every worker but those that stepped aside (each may still be inside a call given up)
        with lock:
            running = [t for t in threads if t.is_alive() and t not in stepped_aside]
        if not running:
            return stats
        running[0].join(timeout=0.1)
