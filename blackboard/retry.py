"""When to try a failed task again: exponential backoff with jitter, shared by every component that retries."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from blackboard.records import TaskResult
from blackboard.states import TaskState

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": half the delay is fixed, half is random.

    The fixed half keeps retries from hammering a struggling dependency; the random half keeps many tasks that failed
    together from retrying together. Whether a retry happens at all is decided by the task's ``max_attempts`` and the
    error's ``retryable`` flag (see :meth:`blackboard.Blackboard.complete`).

    Attributes:
        base_seconds: the delay before the second attempt (before jitter).
        factor: growth per attempt.
        max_seconds: the longest delay.
        jitter: whether to randomise half of the delay.
    """

    base_seconds: float = 1.0
    factor: float = 2.0
    max_seconds: float = 60.0
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after attempt number ``attempt`` (1-based) failed."""
        full = min(self.max_seconds, self.base_seconds * self.factor ** max(0, attempt - 1))
        if not self.jitter:
            return full
        return full / 2 + (rng or random).uniform(0, full / 2)

    def retry_at(self, attempt: int, now: datetime, rng: random.Random | None = None) -> datetime:
        """The time at which the attempt after ``attempt`` may start."""
        return now + timedelta(seconds=self.delay(attempt, rng))

    def next_attempt_at(self, result: TaskResult, now: datetime) -> datetime | None:
        """When to try again after ``result``: ``None`` for a success or an error that says it is not retryable.

        Whether attempts remain is the task's ``max_attempts``, checked by :meth:`blackboard.Blackboard.complete`.
        """
        if result.status not in (TaskState.FAILED, TaskState.TIMED_OUT):
            return None
        if result.error is not None and not result.error.retryable:
            return None
        return self.retry_at(result.attempt, now)
