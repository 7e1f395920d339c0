"""Batch calls that accept some entries and refuse others (SQS ``SendMessageBatch``, EventBridge ``PutEvents``).

Entries are split into batches under the service's count and byte limits. Only refused entries are sent again, under
the same entry ids, so a retry never doubles an accepted entry; what is still refused after the last attempt is
raised in one :class:`BatchFailedError` that lists it, after every other batch was sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from blackboard.adapters.aws._retries import retry_leftovers
from blackboard.exceptions import BatchFailedError, BlackboardError

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
    base_seconds: float,
    max_seconds: float = 5.0,
    sleep: Callable[[float], None] | None = None,
) -> list[str]:
    """Send every batch with ``call``, retrying refused entries up to ``attempts`` times; return the accepted ids.

    Refused entries are sent again by :func:`~blackboard.adapters.aws._retries.retry_leftovers` (jittered exponential
    backoff from ``base_seconds`` up to ``max_seconds``).

    Raises:
        BatchFailedError: some entries were still refused (the others were accepted and are listed in it).
        BlackboardError: the first call failed as a whole, so nothing was accepted.
    """
    accepted: set[str] = set()
    failures: dict[str, tuple[str, str]] = {}
    transient = [True]  # whether every final refusal so far was worth retrying

    def send(pending: list[E], last: bool) -> list[E]:
        refused = call(pending)
        again: list[E] = []
        for entry in pending:
            key = entry_id(entry)
            if key not in refused:
                accepted.add(key)
            elif refused[key][2] and not last:
                again.append(entry)
            else:
                code, message, retryable = refused[key]
                failures[key] = (code, message)
                transient[0] = transient[0] and retryable
        return again

    for index, batch in enumerate(batches):
        try:
            retry_leftovers(
                send, batch, attempts=attempts, base_seconds=base_seconds, max_seconds=max_seconds, sleep=sleep
            )
        except BlackboardError as exc:
            if not accepted and not failures:
                raise  # nothing went out: the plain error is the clearer one
            sent = accepted | failures.keys()
            for entry in batch:
                if entry_id(entry) not in sent:
                    failures[entry_id(entry)] = (type(exc).__name__, str(exc))
            for later in batches[index + 1 :]:
                for entry in later:
                    failures[entry_id(entry)] = ("NotSent", f"not sent after {type(exc).__name__}")
            raise BatchFailedError(
                operation,
                failures,
                _in_order(batches, entry_id, accepted),
                retryable=transient[0] and exc.retryable,
                attempts=attempts,
            ) from exc
    if failures:
        raise BatchFailedError(
            operation, failures, _in_order(batches, entry_id, accepted), retryable=transient[0], attempts=attempts
        )
    return _in_order(batches, entry_id, accepted)


def _in_order(batches: list[list[E]], entry_id: Callable[[E], str], accepted: set[str]) -> list[str]:
    return [key for batch in batches for key in map(entry_id, batch) if key in accepted]
