"""The wire between the pool, its zygotes and their children: length-prefixed frames carrying JSON documents.

Pool → zygote, per request: a ``Control`` frame (limits, read by the zygote) and a ``Payload`` frame (code, input,
context and env). The zygote never parses the payload: it hands the bytes to the child and zeroes its copy, so a
later task forked from the same zygote cannot find an earlier task's credentials in its inherited memory.

Zygote → pool: a ``Ready`` frame once, then per request a ``Report`` frame (how the child ended) and the raw bytes
the child wrote to its result pipe, which the pool (trusted code) parses as a ``Result``. Hostile code can write
anything to that pipe; the worst it gets is a ``ProtocolError`` or a result it could have returned anyway.
"""

from __future__ import annotations

import math
import os
import select
import struct
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from wrapper.sandbox._types import SandboxLimits

_HEADER = struct.Struct(">I")
#: Largest frame accepted in either direction.
MAX_FRAME = 1024**3
#: Room in a result document above ``limits.output_bytes``: notes (64 of 64 KiB), stdout tail, error text, keys.
RESULT_OVERHEAD = 8 * 1024**2


class FrameError(Exception):
    """The other side closed the pipe, sent a malformed frame or did not answer in time."""


class Control(BaseModel):
    """What the zygote needs to know to supervise a child."""

    limits: SandboxLimits


class Payload(BaseModel):
    """What the child needs to run the worker. ``code`` is the module source as a latin-1 string (bytes 1:1)."""

    code: str
    module_name: str
    entrypoint: str
    input: dict[str, Any]
    context: dict[str, Any]
    env: dict[str, str]


class Ready(BaseModel):
    """A zygote is up: its pid, what isolation it achieved (``landlock``: the ABI, 0 for none), what it preloaded."""

    pid: int
    separate_user: bool
    network_namespace: bool
    mount_namespace: bool
    landlock: int = 0
    preloaded: list[str]


class Report(BaseModel):
    """How a child ended, as seen by the zygote."""

    exit_code: int | None = None
    signal: int | None = None
    timed_out: bool = False
    overflow: bool = False
    duration_ms: float = 0.0
    cpu_seconds: float = 0.0
    clean: bool = True


class Result(BaseModel):
    """The one document a child writes to its result pipe."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed"]
    output: Any = None
    error_type: str | None = None
    error_message: str | None = None
    retryable: bool = True
    usage: dict[str, int] = {}
    notes: list[tuple[str, Any]] = []
    stdout_tail: str = ""
    spans: list[dict[str, Any]] = []


def header(size: int) -> bytes:
    """The length prefix of a frame of ``size`` bytes."""
    return _HEADER.pack(size)


def frame(body: bytes | bytearray) -> bytes:
    """Length-prefix ``body`` (a copy: use :func:`header` to send a buffer that must not be copied)."""
    return _HEADER.pack(len(body)) + bytes(body)


# ------------------------------------------------------------------ blocking side (zygote, single-threaded)


def read_exact(fd: int, size: int) -> bytearray | None:
    """Read exactly ``size`` bytes into a fresh buffer (no intermediate copies); ``None`` on end of file."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        count = os.readv(fd, [view[got:]])
        if count == 0:
            return None
        got += count
    return buffer


def read_frame(fd: int) -> bytearray | None:
    """Read one frame; ``None`` on a clean end of file."""
    header = read_exact(fd, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes")
    body = read_exact(fd, size)
    if body is None:
        raise FrameError("end of file inside a frame")
    return body


def write_all(fd: int, data: bytes | bytearray) -> None:
    """Write everything (blocking)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# ------------------------------------------------------------------ deadline side (pool, many threads)


def _wait(fd: int, event: int, deadline: float) -> None:
    poller = select.poll()
    poller.register(fd, event)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameError("no answer in time")
        if poller.poll(math.ceil(remaining * 1000)):
            return


def send(fd: int, data: bytes, deadline: float) -> None:
    """Write everything to a non-blocking ``fd`` before ``deadline``."""
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, deadline)
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue


def _receive_exact(fd: int, size: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    while size:
        _wait(fd, select.POLLIN, deadline)
        try:
            chunk = os.read(fd, min(size, 1024**2))
        except BlockingIOError:
            continue
        if not chunk:
            raise FrameError("the zygote closed its output")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float) -> bytes:
    """Read one frame from a non-blocking ``fd`` before ``deadline``."""
    (size,) = _HEADER.unpack(_receive_exact(fd, _HEADER.size, deadline))
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes")
    return _receive_exact(fd, size, deadline)
