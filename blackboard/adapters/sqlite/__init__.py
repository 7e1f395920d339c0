"""The embedded default: every port but the code store and the bus in one SQLite file."""

from blackboard.adapters.sqlite._database import SqliteDatabase
from blackboard.adapters.sqlite.blackboard import SqliteBlackboard
from blackboard.adapters.sqlite.queue import SqliteTaskQueue
from blackboard.adapters.sqlite.registry import SqliteRegistry

__all__ = ["SqliteBlackboard", "SqliteDatabase", "SqliteRegistry", "SqliteTaskQueue"]
