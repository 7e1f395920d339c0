"""The backends the conformance suite runs against. A new adapter joins the suite by adding a line here."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

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


FACTORIES: dict[str, Factory] = {"memory": _memory, "sqlite": _sqlite}
BACKENDS = list(FACTORIES)
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
