"""Errors raised by the arbiter package.

:class:`ArbiterError` is the root of every error of the library (defined in :mod:`blackboard.exceptions`, the lowest
layer, and re-exported here and in :mod:`arbiter.errors`). :class:`UsageError` is a caller's mistake (a bad event
file, an unknown option): the CLI exits 2 on it. :class:`PlannerError` is a run-time failure of the model call,
transient (``retryable``: throttling, a timeout, a 5xx answer, a broken connection) or permanent; the coordinator
retries the first kind (see :class:`~arbiter.coordinator.EngineSettings`) and fails the orchestration with the reason
on the second.
"""

from __future__ import annotations

from blackboard.exceptions import ArbiterError

__all__ = ["ArbiterError", "PlannerError", "UsageError"]


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
