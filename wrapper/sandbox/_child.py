"""What runs in the forked child: isolate, load the worker module, call its entrypoint, write one result document.

Everything here runs in a child of a zygote, forked ahead of its request (a "spare", so that the fork is not on a
task's critical path) and waiting for it on a pipe: it never returns into the zygote's loop, it ends in
``os._exit``. Isolation comes first and fails closed: if the zygote planned a namespace or a user id and the child
cannot get it, the worker code does not run (``IsolationFailed``, retryable) rather than run with less protection
than the pool reports.

The child has no handle on the blackboard, registry or bus: it is a separate process whose environment is scrubbed
to an allow-list plus ``request.env``, whose descriptors are closed except its result pipe, and, under the dedicated
user id, whose user cannot open the store files of the parent. Without a dedicated uid it is confined by Landlock
where the kernel has it (``_landlock``), last, just before the worker's code is loaded.
"""

from __future__ import annotations

import inspect
import io
import json
import linecache
import os
import signal
import sys
import tempfile
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from wrapper import sdk
from wrapper._json_values import CONTRACT, strict_json, text
from wrapper.exceptions import NonRetryableError
from wrapper.sandbox import _isolation, _landlock, _limits, _spans
from wrapper.sandbox._protocol import Control, Payload, Result, read_frame, write_all
from wrapper.sandbox._types import SandboxLimits

#: How much of what the worker prints is kept (the end of it).
STDOUT_TAIL_BYTES = 4096
#: Bound on an error message (message plus the last lines of the traceback).
MAX_ERROR_CHARS = 8192
_ENV_ALLOW = ("PATH", "LANG", "LC_ALL", "TZ")
#: Exit status of a child whose own machinery broke before it could write a result.
EXIT_BROKEN = 70


class _TailRaw(io.RawIOBase):
    """A write-only sink that keeps only the last few KiB: printing megabytes costs nothing but time."""

    def __init__(self) -> None:
        self.tail = b""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(memoryview(data)[-STDOUT_TAIL_BYTES:])
        self.tail = (self.tail + chunk)[-STDOUT_TAIL_BYTES:]
        return len(memoryview(data))


@dataclass(frozen=True, slots=True)
class Spare:
    """What a pre-forked child is given by its zygote.

    Attributes:
        go_fd: read end of the pipe its request arrives on (a ``Control`` frame, then a ``Payload`` frame).
        result_fd: write end of its result pipe.
        plan: the zygote's isolation plan.
        parent: the zygote's pid.
        workdir: the working directory the zygote made, where there is no mount namespace.
        inherited: descriptors of the zygote to close at once (its protocol pipes).
    """

    go_fd: int
    result_fd: int
    plan: _isolation.Plan
    parent: int
    workdir: str | None
    inherited: tuple[int, ...]


def run(spare: Spare) -> NoReturn:
    """The child's whole life: wait for a request, run it, exit. Never returns."""
    status = EXIT_BROKEN
    try:
        _isolation.tie_to_parent(spare.parent)
        os.setsid()
        for fd in spare.inherited:
            os.close(fd)
        control, payload = read_frame(spare.go_fd), read_frame(spare.go_fd)
        os.close(spare.go_fd)
        if control is None or payload is None:
            status = 0  # the zygote is shutting down
        else:
            status = _run(spare, Control.model_validate_json(control).limits, payload)
    finally:
        os._exit(status)


def _run(spare: Spare, limits: SandboxLimits, payload_buffer: bytearray) -> int:
    plan, result_fd = spare.plan, spare.result_fd
    payload = Payload.model_validate_json(payload_buffer)
    payload_buffer[:] = bytes(len(payload_buffer))
    try:
        workdir = _isolate(limits, plan, spare.parent, spare.workdir)
        result_fd = _limits.close_fds_except(result_fd)
    except OSError as exc:
        _write(result_fd, _failed("IsolationFailed", f"the sandbox could not isolate the child: {exc}", True, {}))
        return 0
    _scrub_environment(workdir, payload.env)
    tail = _TailRaw()
    sys.stdout = sys.stderr = io.TextIOWrapper(
        io.BufferedWriter(tail), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    # An oversized write must fail with EFBIG where the worker can see it, not kill the child.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    _limits.set_limits(limits, separate_user=plan.uid is not None)
    if plan.landlock:
        try:
            _landlock.confine(
                workdir=workdir,
                readable=plan.readable,
                network=limits.network,
                context=payload.context,
                env=payload.env,
            )
        except OSError as exc:
            _write(result_fd, _failed("IsolationFailed", f"the sandbox could not confine the child: {exc}", True, {}))
            return 0
    with _spans.recording(payload.context.get("traceparent")) as spans:
        try:
            document = _execute(payload, limits, tail)
        except MemoryError:
            _limits.claim_memory_headroom()
            document = _failed("MemoryLimitExceeded", "out of memory while reporting the result", False, {})
    if spans:
        document = _with_spans(document, spans)
    _write(result_fd, document)
    # End of file tells the zygote the result is complete now, before the kernel tears the address space down.
    os.close(result_fd)
    return 0


def _isolate(limits: SandboxLimits, plan: _isolation.Plan, parent: int, workdir: str | None) -> str:
    _isolation.prctl(_isolation.PR_SET_NO_NEW_PRIVS, 1)
    _isolation.enter_namespaces(
        mount_namespace=plan.mount_namespace,
        network_namespace=plan.network_namespace and not limits.network,
        tmpfs_bytes=limits.file_size_bytes,
        expose=plan.expose,
        keep=plan.keep,
    )
    if plan.mount_namespace:
        workdir = _isolation.NAMESPACE_WORKDIR
        os.mkdir(workdir, 0o700)
        if plan.uid is not None:
            os.chown(workdir, plan.uid, plan.uid)
    elif workdir is None:
        raise _isolation.IsolationError(0, "no working directory")
    if plan.uid is not None:
        _isolation.drop_privileges(plan.uid)
        _isolation.tie_to_parent(parent)  # a credential change clears the parent-death signal: set it again
    os.chdir(workdir)
    os.umask(0o077)
    return workdir


def _scrub_environment(workdir: str, extra: dict[str, str]) -> None:
    kept = {key: os.environ[key] for key in _ENV_ALLOW if key in os.environ}
    kept.update({key: value for key, value in os.environ.items() if key.startswith("LC_")})
    os.environ.clear()
    os.environ.update(kept)
    os.environ.update({"HOME": workdir, "TMPDIR": workdir})
    os.environ.update(extra)
    tempfile.tempdir = None  # the zygote may have cached its own


def _with_spans(document: bytes, spans: list[dict[str, Any]]) -> bytes:
    """Splice the recorded spans into the result document (a JSON object) without parsing it again."""
    try:
        encoded = json.dumps(spans, default=str)
    except (TypeError, ValueError):
        return document
    return document[:-1] + b',"spans":' + encoded.encode() + b"}"


def _write(fd: int, document: bytes) -> None:
    write_all(fd, document)


def _failed(error_type: str, message: str, retryable: bool, usage: dict[str, int], tail: str = "") -> bytes:
    result = Result(
        status="failed",
        error_type=text(error_type),
        error_message=_clip(text(message)),
        retryable=retryable,
        usage=usage,
        stdout_tail=tail,
    )
    return result.model_dump_json().encode()


def _clip(message: str) -> str:
    """Keep the start (the message) and the end (where the traceback points) of an overlong text."""
    if len(message) <= MAX_ERROR_CHARS:
        return message
    half = MAX_ERROR_CHARS // 2
    return f"{message[:half]}\n[... {len(message) - 2 * half} characters left out ...]\n{message[-half:]}"


def _describe(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:
        message = "<the exception could not be shown>"
    frames = exc.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename == __file__:
        frames = frames.tb_next  # the sandbox's own frames say nothing about the worker
    try:
        lines = traceback.format_exception(type(exc), exc, frames)
    except Exception:
        lines = []
    trace = "".join(lines[-12:])
    return f"{message}\n{trace}" if trace else message


def _load(payload: Payload) -> Callable[..., Any]:
    filename = f"<sandbox {payload.module_name}>"
    source = payload.code.encode("latin-1")
    lines = source.decode("utf-8", errors="replace").splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)  # tracebacks then show the source lines
    code = compile(source, filename, "exec", dont_inherit=True)
    module = types.ModuleType(payload.module_name)
    sys.modules[payload.module_name] = module  # dataclasses, pickle and friends look the module up there
    exec(code, module.__dict__)
    handler: Callable[..., Any] | None = getattr(module, payload.entrypoint, None)
    if handler is None:
        raise AttributeError(f"module {payload.module_name!r} has no attribute {payload.entrypoint!r}")
    if not callable(handler):
        raise TypeError(f"{payload.module_name}.{payload.entrypoint} is not callable")
    if inspect.iscoroutinefunction(handler) or inspect.isasyncgenfunction(handler):
        raise TypeError(f"{payload.entrypoint} is an async def; the contract is {CONTRACT} (run async code inside it)")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return handler  # not introspectable: the call itself will tell
    try:
        signature.bind(**payload.input)
    except TypeError as exc:
        arguments = ", ".join(sorted(payload.input)) or "none"
        message = f"{payload.entrypoint}{signature} cannot be called with the input's keys ({arguments}): {exc}"
        raise TypeError(message) from None
    return handler


def _load_failure(exc: BaseException) -> tuple[str, bool]:
    """Loading runs definitions: its failures repeat on every attempt, except those of the outside world."""
    if isinstance(exc, MemoryError):
        return "MemoryLimitExceeded", False
    return type(exc).__name__, isinstance(exc, OSError)


def _call_failure(exc: BaseException) -> tuple[str, bool]:
    """Sorted the way the executor sorts a trusted handler's failures."""
    if isinstance(exc, MemoryError):
        return "MemoryLimitExceeded", False
    if isinstance(exc, NonRetryableError) or not isinstance(exc, Exception):
        return type(exc).__name__, False
    return type(exc).__name__, True


def _execute(payload: Payload, limits: SandboxLimits, tail: _TailRaw) -> bytes:
    context = sdk.TaskContext.model_validate(payload.context)
    with sdk.session(context) as session:
        try:
            handler = _load(payload)
        except BaseException as exc:
            return _exception_document(exc, _load_failure(exc), session, tail)
        late = _too_late(limits)
        if late is not None:
            return _failed("NotStarted", late, True, session.usage, _tail_text(tail))
        try:
            output = handler(**payload.input)
        except BaseException as exc:
            return _exception_document(exc, _call_failure(exc), session, tail)
        try:
            encoded = strict_json(output)
        except MemoryError as exc:
            return _exception_document(exc, ("MemoryLimitExceeded", False), session, tail)
        except Exception as exc:
            message = f"the handler returned a value that is not JSON: {exc}"
            return _failed("OutputNotSerializable", message, False, session.usage, _tail_text(tail))
        if len(encoded) > limits.output_bytes:
            message = f"the output is {len(encoded)} bytes as JSON; the limit is {limits.output_bytes}"
            return _failed("OutputTooLarge", message, False, session.usage, _tail_text(tail))
        rest = Result(status="succeeded", usage=session.usage, notes=session.notes, stdout_tail=_tail_text(tail))
        # The output is already JSON (ASCII): splice it in rather than encode it a second time.
        return b'{"output":' + encoded.encode() + b"," + rest.model_dump_json(exclude={"output"}).encode()[1:]


def _too_late(limits: SandboxLimits) -> str | None:
    """Why the handler must not start now (its deadline or its start bound passed), or ``None``."""
    now = time.time()
    for name, bound in (("deadline", limits.deadline), ("start bound", limits.start_by)):
        if bound is not None and now >= bound:
            return f"the handler did not start: its {name} passed {now - bound:.3f}s before it could"
    return None


def _exception_document(exc: BaseException, kind: tuple[str, bool], session: sdk.TaskSession, tail: _TailRaw) -> bytes:
    if kind[0] == "MemoryLimitExceeded":
        _limits.claim_memory_headroom()  # room to format the report while the worker's objects are still alive
    return _failed(kind[0], _describe(exc), kind[1], session.usage, _tail_text(tail))


def _tail_text(tail: _TailRaw) -> str:
    try:
        sys.stdout.flush()
    except Exception:
        pass  # the worker may have replaced or closed sys.stdout
    return tail.tail.decode("utf-8", errors="replace")
