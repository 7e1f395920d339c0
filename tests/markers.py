"""Side-effect markers for tests of sandboxed workers: a TCP server on 127.0.0.1 that records what handlers report.

A sandboxed child sees no file of the host and, without the network, no loopback either; a child allowed the network
(``SandboxLimits(network=True)``) reaches this server. :data:`MARKING_HANDLER` is a worker that reports
``<key> <attempt> <time> <deadline>`` when it starts (the key defaults to ``<orchestration id>/<task id>``), then
optionally holds, fails or exits.
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MARKING_HANDLER = """
import os
import socket
import time

from wrapper import sdk


def handler(port, key=None, hold=0.0, fail=False, exit_after=False, fail_first=False):
    context = sdk.context()
    if fail_first and context.attempt == 1:
        raise RuntimeError("failing the first attempt on purpose, before any side effect")
    key = key or f"{context.orchestration_id}/{context.task_id}"
    deadline = context.deadline.timestamp() if context.deadline is not None else float("inf")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(f"{key} {context.attempt} {time.time()} {deadline}\\n".encode())
    time.sleep(hold)
    if exit_after:
        os._exit(1)
    if fail:
        raise RuntimeError("failing on purpose")
    return {"key": key, "attempt": context.attempt}
"""


@dataclass(frozen=True)
class Mark:
    """One handler start: which task (its key), which attempt, when, and the attempt's deadline (epoch seconds)."""

    key: str
    attempt: int
    at: float
    deadline: float


class Markers:
    """The marks received so far (thread-safe)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._marks: list[Mark] = []
        self._lock = threading.Lock()

    def add(self, mark: Mark) -> None:
        with self._lock:
            self._marks.append(mark)

    @property
    def marks(self) -> list[Mark]:
        """Every mark, in the order received."""
        with self._lock:
            return list(self._marks)

    def of(self, key: str) -> list[Mark]:
        """The marks of one task."""
        return [m for m in self.marks if m.key == key]

    def wait_for(self, condition: Callable[[list[Mark]], bool], timeout: float = 30.0) -> bool:
        """Poll until ``condition(marks)`` holds or ``timeout`` passes."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if condition(self.marks):
                return True
            time.sleep(0.02)
        return condition(self.marks)


@contextmanager
def marker_server() -> Iterator[Markers]:
    """A marker server on a free port of 127.0.0.1 for the duration of the block."""
    markers: Markers

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                key, attempt, at, deadline = line.decode().split()
                markers.add(Mark(key, int(attempt), float(at), float(deadline)))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    markers = Markers(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield markers
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
