"""Ready-made sets of adapters: in memory, and the embedded default in ``ARBITER_HOME``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from blackboard.adapters.inprocess_bus import InProcessEventBus
from blackboard.adapters.local_code_store import LocalCodeStore
from blackboard.adapters.memory import MemoryBlackboard, MemoryCodeStore, MemoryRegistry, MemoryTaskQueue
from blackboard.adapters.sqlite import SqliteBlackboard, SqliteDatabase, SqliteRegistry, SqliteTaskQueue
from blackboard.constants import CODE_DIR, DATABASE_FILE, resolve_home
from blackboard.exceptions import ConfigurationError
from blackboard.ports import Blackboard, CodeStore, EventBus, Registry, TaskQueue

__all__ = ["Backends", "local_backends", "memory_backends"]


@dataclass(frozen=True)
class Backends:
    """One adapter for each port."""

    blackboard: Blackboard
    registry: Registry
    code_store: CodeStore
    queue: TaskQueue
    bus: EventBus
    database: SqliteDatabase | None = field(default=None, repr=False)
    #: Where large values go by SHA-256 reference (big task outputs, offloaded blackboard values). On AWS this is a
    #: bucket apart from the code bucket, so that the wrapper can write payloads but never code. Defaults to
    #: ``code_store``.
    payloads: CodeStore | None = field(default=None, repr=False)

    @property
    def payload_store(self) -> CodeStore:
        """The store for large values: ``payloads`` if set, else ``code_store``."""
        return self.payloads if self.payloads is not None else self.code_store

    def close(self) -> None:
        """Release connections (a no-op for memory adapters)."""
        if self.database is not None:
            self.database.close()


def _private_directory(root: Path) -> None:
    """Create the home readable by its owner only: sandboxed workers run as other users and must not read it."""
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create the state directory {root}: {exc}") from exc
    if not root.is_dir():
        raise ConfigurationError(f"the state directory {root} is not a directory")


def memory_backends() -> Backends:
    """Adapters that keep everything in this process's memory (tests, throwaway runs)."""
    return Backends(MemoryBlackboard(), MemoryRegistry(), MemoryCodeStore(), MemoryTaskQueue(), InProcessEventBus())


def local_backends(home: str | os.PathLike[str] | None = None) -> Backends:
    """The embedded default: ``<home>/arbiter.db`` (SQLite, WAL) and ``<home>/code/<sha256>``.

    Args:
        home: the state directory; defaults to ``$ARBITER_HOME``, else ``./.arbiter``.
    """
    root = resolve_home(home)
    _private_directory(root)
    database = SqliteDatabase(root / DATABASE_FILE)
    return Backends(
        SqliteBlackboard(database),
        SqliteRegistry(database),
        LocalCodeStore(root / CODE_DIR),
        SqliteTaskQueue(database),
        InProcessEventBus(),
        database,
    )
