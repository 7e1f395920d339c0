"""Turning what the zygote reports (and what the child wrote) into a ``SandboxOutcome``.

This runs in the pool, the trusted side: the child's result document is untrusted input and is validated here.
"""

from __future__ import annotations

import signal
from typing import Literal

from pydantic import ValidationError

from wrapper.sandbox import _spans
from wrapper.sandbox._limits import cpu_limit
from wrapper.sandbox._protocol import Report, Result
from wrapper.sandbox._types import SandboxLimits, SandboxOutcome

__all__ = ["crashed", "failed", "from_report"]


def failed(
    error_type: str,
    message: str,
    *,
    retryable: bool,
    duration_ms: float = 0.0,
    status: Literal["failed", "timed_out"] = "failed",
) -> SandboxOutcome:
    """A failed (or timed-out) outcome without a result document."""
    return SandboxOutcome(
        status=status, error_type=error_type, error_message=message, retryable=retryable, duration_ms=duration_ms
    )


def crashed(message: str) -> SandboxOutcome:
    """The zygote died or hung: nothing is known about the worker, so another attempt may well succeed."""
    return failed("SandboxCrashed", message, retryable=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def from_report(report: Report, raw: bytes, limits: SandboxLimits) -> SandboxOutcome:
    """The outcome of one execution."""
    ms = report.duration_ms
    if report.timed_out:
        message = f"no result within {limits.timeout_seconds:g}s"
        return failed("Timeout", message, retryable=True, duration_ms=ms, status="timed_out")
    if report.overflow:  # before the signal: the zygote killed it for this
        return failed("ProtocolError", "the result document exceeded its size bound", retryable=False, duration_ms=ms)
    if report.signal is not None:
        cpu = cpu_limit(limits.timeout_seconds, limits.cpu_seconds)
        # Past the soft limit the kernel sends SIGXCPU; a worker that ignores it gets SIGKILL at the hard limit.
        if report.signal == signal.SIGXCPU or (report.signal == signal.SIGKILL and report.cpu_seconds >= cpu):
            message = f"used {report.cpu_seconds:.1f}s of CPU; the limit is {cpu}s"
            return failed("CpuLimitExceeded", message, retryable=False, duration_ms=ms)
        message = f"the worker process was killed by {_signal_name(report.signal)}"
        return failed("Crashed", message, retryable=True, duration_ms=ms)
    if not raw:
        # A process that ends without a result (``os._exit``, a native library calling ``exit``) died the way a
        # killed one does: the same attempt again may well succeed, and max_attempts bounds the retries.
        message = f"the worker process exited (status {report.exit_code}) without a result"
        return failed("Crashed", message, retryable=True, duration_ms=ms)
    try:
        result = Result.model_validate_json(raw)
    except ValidationError as exc:
        message = f"malformed result document: {exc.errors()[0]['msg'] if exc.errors() else exc}"
        return failed("ProtocolError", message, retryable=False, duration_ms=ms)
    _spans.emit(result.spans)  # the child's spans, under the caller's current span
    if result.status == "succeeded":
        return SandboxOutcome(
            status="succeeded",
            output=result.output,
            duration_ms=ms,
            usage=result.usage,
            notes=tuple((key, value) for key, value in result.notes),
            stdout_tail=result.stdout_tail,
        )
    return SandboxOutcome(
        status="failed",
        error_type=result.error_type or "Error",
        error_message=result.error_message,
        retryable=result.retryable,
        duration_ms=ms,
        usage=result.usage,
        stdout_tail=result.stdout_tail,
    )
