"""Transient planner failures (throttling, timeouts, 5xx, broken connections) retried with jitter, within a deadline.

Tenacity with random exponential backoff, as everywhere else in the codebase; whether a failure is retried is the
error's ``retryable`` attribute (see :func:`wrapper.model_errors.transient_model_error`), never its message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from arbiter.exceptions import PlannerError

__all__ = ["PlannerRetry"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


@dataclass(frozen=True)
class PlannerRetry:
    """How often and how patiently a transient planner failure is retried within one call of the coordinator.

    Attributes:
        attempts: model calls at most (the first one included).
        backoff_seconds: the scale of the random exponential backoff between calls.
        max_backoff_seconds: the longest wait between two calls.
    """

    attempts: int = 4
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 20.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff_seconds < 0 or self.max_backoff_seconds < 0:
            raise ValueError("backoff times cannot be negative")

    def call(
        self,
        call: Callable[[], _T],
        *,
        deadline: datetime | None,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        label: str = "",
    ) -> _T:
        """Return ``call()``, retrying it on a retryable :class:`PlannerError`.

        It gives up after :attr:`attempts` calls, or earlier when the next wait would end past ``deadline`` (the
        orchestration's): the last error is raised as it was.
        """

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            return deadline is not None and clock() + timedelta(seconds=state.upcoming_sleep) >= deadline

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            logger.warning(
                "orchestration_id=<%s>, attempt=<%d>, wait_s=<%.2f> | planner failed transiently, retrying: %s",
                label,
                state.attempt_number,
                state.upcoming_sleep,
                error,
            )

        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, PlannerError) and exc.retryable),
            stop=stop,
            wait=wait_random_exponential(multiplier=self.backoff_seconds, max=self.max_backoff_seconds),
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(call)
