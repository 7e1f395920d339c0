"""Adapters of the ports: in-memory (tests), SQLite and local files (the embedded default), in-process bus."""

from blackboard.adapters.inprocess_bus import InProcessEventBus
from blackboard.adapters.local_code_store import LocalCodeStore
from blackboard.adapters.memory import MemoryBlackboard, MemoryCodeStore, MemoryRegistry, MemoryTaskQueue
from blackboard.adapters.sqlite import SqliteBlackboard, SqliteDatabase, SqliteRegistry, SqliteTaskQueue

__all__ = [
    "InProcessEventBus",
    "LocalCodeStore",
    "MemoryBlackboard",
    "MemoryCodeStore",
    "MemoryRegistry",
    "MemoryTaskQueue",
    "SqliteBlackboard",
    "SqliteDatabase",
    "SqliteRegistry",
    "SqliteTaskQueue",
]
