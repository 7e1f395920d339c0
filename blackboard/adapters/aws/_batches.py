"""Batch calls that accept some entries and refuse others (SQS ``SendMessageBatch``, EventBridge ``PutEvents``).

Entries are split into batches under the service's count and byte limits. Only refused entries are sent again, under
the same entry ids, so a retry never doubles an accepted entry; what is still refused after the last attempt is
raised in one :class:`BatchFailedError` that lists it, after every other batch was sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from blackboard.exceptions import BatchFailedError, BlackboardError
from blackboard.retry import RetryPolicy

__all__ = ["Refused", "chunks", "send_batches"]

E = TypeVar("E")

#: What one call reports for each entry it refused: entry id -> (error code, error message, worth retrying).
Refused = dict[str, tuple[str, str, bool]]


def chunks(entries: Sequence[E], sizes: Sequence[int], *, max_count: int, max_bytes: int) -> list[list[E]]:
    """Split ``entries`` in order into batches of at most ``max_count`` entries and ``max_bytes`` in all.

    Every single size must be at most ``max_bytes`` (callers refuse larger entries first).
    """
    batches: list[list[E]] = []
    current: list[E] = []
    total = 0
    for entry, size in zip(entries, sizes, strict=True):
        if current and (len(current) == max_count or total + size > max_bytes):
            batches.append(current)
            current, total = [], 0
        current.append(entry)
        total += size
    if current:
        batches.append(current)
    return batches


def send_batches(
    operation: str,
    batches: list[list[E]],
    entry_id: Callable[[E], str],
    call: Callable[[list[E]], Refused],
    *,
    attempts: int,
    backoff: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Send every batch with ``call``, retrying refused entries up to ``attempts`` times; return the accepted ids.

    Raises:
        BatchFailedError: some entries were still refused (the others were accepted and are listed in it).
        BlackboardError: the first call failed as a whole, so nothing was accepted.
    """
    accepted: set[str] = set()
    failures: dict[str, tuple[str, str]] = {}
    retryable = True
    for index, batch in enumerate(batches):
        pending = batch
        for attempt in range(1, attempts + 1):
            try:
                refused = call(pending)
            except BlackboardError as exc:
                if not accepted and not failures:
                    raise  # nothing went out: the plain error is the clearer one
                for entry in pending:
                    failures[entry_id(entry)] = (type(exc).__name__, str(exc))
                for later in batches[index + 1 :]:
                    for entry in later:
                        failures[entry_id(entry)] = ("NotSent", f"not sent after {type(exc).__name__}")
                raise BatchFailedError(
                    operation,
                    failures,
                    _in_order(batches, entry_id, accepted),
                    retryable=retryable and exc.retryable,
                    attempts=attempts,
                ) from exc
            again: list[E] = []
            for entry in pending:
                key = entry_id(entry)
                if key not in refused:
                    accepted.add(key)
                elif refused[key][2] and attempt < attempts:
                    again.append(entry)
                else:
                    code, message, transient = refused[key]
                    failures[key] = (code, message)
                    retryable = retryable and transient
            if not again:
                break
            sleep(backoff.delay(attempt))
            pending = again
    if failures:
        raise BatchFailedError(
            operation, failures, _in_order(batches, entry_id, accepted), retryable=retryable, attempts=attempts
        )
    return _in_order(batches, entry_id, accepted)


def _in_order(batches: list[list[E]], entry_id: Callable[[E], str], accepted: set[str]) -> list[str]:
    return [key for batch in batches for key in map(entry_id, batch) if key in accepted]
