"""The backends the conformance suite runs against. A new adapter joins the suite by adding a line here."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

import pytest

from blackboard import Backends
from blackboard._base import utcnow
from blackboard.adapters import (
    InProcessEventBus,
    LocalCodeStore,
    MemoryBlackboard,
    MemoryCodeStore,
    MemoryRegistry,
    MemoryTaskQueue,
    SqliteBlackboard,
    SqliteDatabase,
    SqliteRegistry,
    SqliteTaskQueue,
)

Factory = Callable[[Path, Callable[[], datetime], Callable[[], float]], Backends]


def _memory(root: Path, clock: Callable[[], datetime], queue_clock: Callable[[], float]) -> Backends:
    return Backends(
        MemoryBlackboard(clock=clock),
        MemoryRegistry(),
        MemoryCodeStore(),
        MemoryTaskQueue(max_receives=3, visibility_timeout=30, clock=queue_clock),
        InProcessEventBus(),
    )


def _sqlite(root: Path, clock: Callable[[], datetime], queue_clock: Callable[[], float]) -> Backends:
    database = SqliteDatabase(root / "arbiter.db")
    return Backends(
        SqliteBlackboard(database, clock=clock),
        SqliteRegistry(database),
        LocalCodeStore(root / "code"),
        SqliteTaskQueue(database, max_receives=3, visibility_timeout=30, clock=queue_clock),
        InProcessEventBus(),
        database,
    )


def _aws(root: Path, clock: Callable[[], datetime], queue_clock: Callable[[], float]) -> Backends:
    """S3, SQS and EventBridge under moto in-process; moto's SQS tells time by ``queue_clock``.

    The blackboard and registry are the memory ones until the DynamoDB adapters join.
    """
    from tests.aws_io_support import MotoBackends, io_adapters, moto_resources, serialized_sqs, sqs_follows

    stack = ExitStack()
    try:
        resources = stack.enter_context(moto_resources(max_receives=3, visibility_timeout=30))
        stack.enter_context(sqs_follows(queue_clock))
        stack.enter_context(serialized_sqs())
        code_store, queue, bus = io_adapters(resources, queue_clock)
    except BaseException:
        stack.close()
        raise
    return MotoBackends(MemoryBlackboard(clock=clock), MemoryRegistry(), code_store, queue, bus, stack=stack)


FACTORIES: dict[str, Factory] = {"memory": _memory, "sqlite": _sqlite, "aws": _aws}
#: Marks of the backends that need more than this process (``-m "not aws"`` leaves them out).
_MARKS = {"aws": [pytest.mark.aws]}
BACKENDS = [pytest.param(name, marks=_MARKS.get(name, [])) for name in FACTORIES]
#: Backends whose state lives outside the process, so that several processes can work on it at once.
SHARED_FILE_BACKENDS = ["sqlite"]


def open_backends(
    name: str,
    root: Path,
    *,
    clock: Callable[[], datetime] = utcnow,
    queue_clock: Callable[[], float] = time.time,
) -> Backends:
    return FACTORIES[name](root, clock, queue_clock)
