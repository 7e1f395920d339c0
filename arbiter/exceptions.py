"""Errors raised by the arbiter package.

:class:`ArbiterError` is the root. :class:`UsageError` is a caller's mistake (a bad event file, an unknown option):
the CLI exits 2 on it. :class:`PlannerError` is a run-time failure of the model call, transient (``retryable``:
throttling, a timeout, a 5xx answer, a broken connection) or permanent; the coordinator retries the first kind
(see :class:`~arbiter.coordinator.EngineSettings`) and fails the orchestration with the reason on the second.
"""

from __future__ import annotations

__all__ = ["ArbiterError", "PlannerError", "UsageError"]


class ArbiterError(Exception):
    """Root of every error raised by the arbiter package.

    Attributes:
        retryable: whether repeating the same call may succeed.
    """

    retryable: bool = False


class UsageError(ArbiterError):
    """The caller asked for something that cannot work as asked (bad input, bad configuration)."""


class PlannerError(ArbiterError):
    """The planning model call failed (the provider raised, or its stream broke off).

    Attributes:
        retryable: whether the failure is transient (see :func:`wrapper.model_errors.transient_model_error`).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        self.retryable = retryable
        super().__init__(message)
