"""Errors raised by the wrapper package.

:class:`WrapperError` is the root. :class:`ModelConfigurationError` is a setup mistake (fix the model spec or install
the provider); :class:`SandboxError` is a run-time failure of the sandbox machinery itself (retryable).
What a worker's own code does wrong never raises out of the wrapper: it becomes a failed task.
"""

from __future__ import annotations

__all__ = ["ModelConfigurationError", "NonRetryableError", "SandboxError", "TaskCancelledError", "WrapperError"]


class WrapperError(Exception):
    """Root of every error raised by the wrapper package.

    Attributes:
        retryable: whether repeating the same call may succeed.
    """

    retryable: bool = False


class ModelConfigurationError(WrapperError):
    """A model spec is malformed, names an unknown provider, or its provider package is not installed."""


class SandboxError(WrapperError):
    """The sandbox could not run a task (a worker process could not start or died); trying again may work."""

    retryable = True


class NonRetryableError(Exception):
    """Raise this from a worker's ``handler`` to fail the task at once, without retries.

    Use it for failures that another attempt cannot fix: invalid input, a missing resource, a refused request.
    """


class TaskCancelledError(WrapperError):
    """The attempt a worker runs for has ended (it timed out, or the runtime is closing): stop, change nothing more.

    Raised by :func:`wrapper.sdk.check_cancelled` and by :func:`wrapper.sdk.note` once :func:`wrapper.sdk.cancelled`
    is true. Whatever the call returns after that is dropped.
    """

    retryable = True
