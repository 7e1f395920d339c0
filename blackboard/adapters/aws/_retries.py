"""The one retry mechanism of the AWS adapters: tenacity, with jittered exponential backoff.

botocore retries every call underneath (the ``standard`` mode of ``_clients.client_config``:
throttling, 5xx answers, broken connections), so an adapter sees only what botocore cannot: a call that succeeded
as a whole while the service refused part of it, or an application-level conflict. Those are retried here, and
nowhere else:

- :func:`retry_conflicts`: an optimistic lock or a concurrent transaction got in the way; the operation reads again;
- :func:`retry_leftovers`: the entries a batch call refused (SQS ``SendMessageBatch``, EventBridge ``PutEvents``) or
  the keys ``BatchGetItem`` left unprocessed are sent again, and only they.

The waits are "full jitter" (uniform between 0 and the exponential bound), so clients that failed together do not
retry together.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt, wait_random_exponential

from blackboard.adapters.aws.exceptions import ContentionError

__all__ = ["CONFLICT_ATTEMPTS", "Conflict", "retry_conflicts", "retry_leftovers"]

_T = TypeVar("_T")

#: Attempts at an operation that keeps meeting optimistic-lock conflicts before ``ContentionError``.
CONFLICT_ATTEMPTS = 12


class Conflict(Exception):
    """An optimistic lock or a concurrent transaction got in the way: read again and retry the operation."""


def retry_conflicts(operation: Callable[[], _T], what: str) -> _T:
    """Run ``operation``, again with jittered backoff while it raises :class:`Conflict`.

    Raises:
        ContentionError: the conflicts went on for every attempt.
    """
    retrying = Retrying(
        retry=retry_if_exception_type(Conflict),
        stop=stop_after_attempt(CONFLICT_ATTEMPTS),
        wait=wait_random_exponential(multiplier=0.005, max=0.25),
        reraise=True,
    )
    try:
        return retrying(operation)
    except Conflict as exc:
        raise ContentionError(
            f"{what}: concurrent writers kept changing the same DynamoDB items ({CONFLICT_ATTEMPTS} attempts,"
            f" last: {exc}); retry later"
        ) from exc


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def retry_leftovers(
    step: Callable[[_T, bool], _T],
    first: _T,
    *,
    attempts: int,
    base_seconds: float,
    max_seconds: float,
    sleep: Callable[[float], None] | None = None,
) -> _T:
    """Call ``step(left, last)`` with what is left, again with jittered backoff while it leaves something.

    ``step`` gets what the previous call left (``first`` at first) and whether this is the last attempt, and returns
    what is still left (empty when done). An exception from ``step`` is not retried: it propagates at once. ``sleep``
    waits (default: ``time.sleep``, looked up at each wait).

    Returns:
        What the last call left: empty unless every attempt left something.
    """
    left = first
    number = 0

    def once() -> _T:
        nonlocal left, number
        number += 1
        left = step(left, number >= attempts)
        return left

    retrying = Retrying(
        retry=retry_if_result(bool),
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=base_seconds, max=max_seconds),
        sleep=sleep or _sleep,
        retry_error_callback=lambda state: left,
    )
    return retrying(once)
