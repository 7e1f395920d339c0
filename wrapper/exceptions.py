"""Errors raised by the wrapper package.

:class:`WrapperError` is the root of this package's errors (an :class:`blackboard.ArbiterError`, the library's one
root). :class:`ModelConfigurationError` is a setup mistake (fix the model spec or install
the provider); :class:`SandboxError` is a run-time failure of the sandbox machinery itself (retryable).
What a worker's own code does wrong never raises out of the wrapper: it becomes a failed task.
"""

from __future__ import annotations

from blackboard.exceptions import ArbiterError

__all__ = [
    "ModelConfigurationError",
    "NoTimeLeftError",
    "NonRetryableError",
    "SandboxError",
    "TaskCancelledError",
    "WrapperError",
]


class WrapperError(ArbiterError):
    """Root of every error raised by the wrapper package (``retryable`` as :class:`~blackboard.ArbiterError`)."""


class ModelConfigurationError(WrapperError):
    """A model spec is malformed, names an unknown provider, or its provider package is not installed."""


class SandboxError(WrapperError):
    """The sandbox could not run a task (a worker process could not start or died); trying again may work."""

    retryable = True


class NoTimeLeftError(WrapperError):
    """The process running tasks (a Lambda invocation) has no time left for this one; it was not started.

    Attributes:
        task_id: the task that was not started.
        time_left: the seconds that were left (zero or less).
    """

    retryable = True

    def __init__(self, task_id: str, time_left: float) -> None:
        self.task_id = task_id
        self.time_left = time_left
        super().__init__(f"task {task_id!r} not started: the invocation has {max(time_left, 0.0):.1f}s left")


class NonRetryableError(ArbiterError):
    """Raise this from a worker's ``handler`` to fail the task at once, without retries (``retryable`` is false).

    Use it for failures that another attempt cannot fix: invalid input, a missing resource, a refused request.
    """


class TaskCancelledError(WrapperError):
    """The attempt a worker runs for has ended (it timed out, or the runtime is closing): stop, change nothing more.

    Raised by :func:`wrapper.sdk.check_cancelled` and by :func:`wrapper.sdk.note` once :func:`wrapper.sdk.cancelled`
    is true. Whatever the call returns after that is dropped.
    """

    retryable = True
