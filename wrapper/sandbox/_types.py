"""What goes into the sandbox and what comes out of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["SandboxCapabilities", "SandboxLimits", "SandboxOutcome", "SandboxRequest"]


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Resource limits of one execution.

    Attributes:
        timeout_seconds: wall-clock limit; past it the whole process tree is killed and the outcome is ``timed_out``.
        cpu_seconds: CPU-time limit (``RLIMIT_CPU``); ``None`` means ``ceil(timeout_seconds) + 1``.
        memory_bytes: address-space limit (``RLIMIT_AS``).
        open_files: file-descriptor limit (``RLIMIT_NOFILE``).
        processes: process limit (``RLIMIT_NPROC``; effective where the child runs under its own user id).
        file_size_bytes: largest file the child may write (``RLIMIT_FSIZE``).
        output_bytes: largest result (as JSON) the child may return.
        network: whether the child may use the network (only with scoped credentials); when ``False`` and the
            machine allows it, the child gets a private network namespace with no interfaces up.
        deadline: an absolute end (seconds since the epoch): the child is killed then even if ``timeout_seconds``
            has not passed since it started, and the handler does not start at or after it.
        start_by: the latest time (seconds since the epoch) the handler may start; a child that gets there later
            exits without calling it (``NotStarted``). Set by the pool from the start fence of :meth:`SandboxPool.run`.
    """

    timeout_seconds: float = 60.0
    cpu_seconds: int | None = None
    memory_bytes: int = 2 * 1024**3
    open_files: int = 256
    processes: int = 32
    file_size_bytes: int = 64 * 1024**2
    output_bytes: int = 32 * 1024**2
    network: bool = False
    deadline: float | None = None
    start_by: float | None = None


@dataclass(frozen=True, slots=True)
class SandboxRequest:
    """One execution: a module's source, the function to call and its keyword arguments.

    Attributes:
        code: the module source, already verified against its SHA-256 by the caller.
        module_name: the name the module is loaded under (shown in tracebacks).
        input: keyword arguments for the entrypoint (JSON-serialisable).
        context: ``wrapper.sdk.TaskContext`` as a JSON-compatible dict; the child activates it for ``wrapper.sdk``.
        entrypoint: the function to call.
        env: extra environment variables for the child (scoped credentials); everything else is scrubbed.
        limits: resource limits.
    """

    code: bytes
    module_name: str
    input: Mapping[str, Any]
    context: Mapping[str, Any]
    entrypoint: str = "handler"
    env: Mapping[str, str] = field(default_factory=dict)
    limits: SandboxLimits = field(default_factory=SandboxLimits)


@dataclass(frozen=True, slots=True)
class SandboxOutcome:
    """What happened.

    Attributes:
        status: ``succeeded``, ``failed`` or ``timed_out``.
        output: the entrypoint's return value (JSON-compatible) when it succeeded.
        error_type: the exception's class name (or a sandbox reason such as ``MemoryLimitExceeded``) when it did not.
        error_message: a human-readable explanation, with the last lines of the traceback where there is one.
        retryable: whether another attempt might succeed (``False`` for deterministic failures such as an import
            error, a non-serialisable return value or ``NonRetryableError``).
        duration_ms: wall-clock time of the execution inside the sandbox.
        usage: model tokens: ``input_tokens``, ``output_tokens``, ``total_tokens``.
        notes: notes contributed through ``wrapper.sdk.note``, in order.
        stdout_tail: the last few KiB of what the code printed, for diagnostics.
    """

    status: Literal["succeeded", "failed", "timed_out"]
    output: Any = None
    error_type: str | None = None
    error_message: str | None = None
    retryable: bool = True
    duration_ms: float = 0.0
    usage: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[tuple[str, Any], ...] = ()
    stdout_tail: str = ""


@dataclass(frozen=True, slots=True)
class SandboxCapabilities:
    """Which protections this machine grants the sandbox (reported by the pool, shown in diagnostics).

    Attributes:
        separate_user: children run under a dedicated unprivileged user id (needs root).
        network_namespace: children can be cut off the network.
        mount_namespace: children get private ``/tmp``, ``/var/tmp`` and ``/dev/shm``.
        landlock: the Landlock ABI version children are confined with where they share the application's uid
            (0: none). It keeps them off every other process, every file outside the interpreter, their working
            directory and a few system files, and (ABI 4) off TCP unless a request allows the network.
    """

    separate_user: bool
    network_namespace: bool
    mount_namespace: bool
    landlock: int = 0
