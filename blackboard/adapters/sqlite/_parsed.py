"""Records a :class:`~blackboard.adapters.SqliteBlackboard` keeps parsed: orchestrations, and tasks it wrote.

An orchestration's document holds its whole conversation: near the end of a wide run it is hundreds of kilobytes,
and every planning step reads it back. A read whose stored ``version`` and document length both match the entry
kept here is answered with the kept record: the document is neither transferred nor parsed again, and the process
holds one parsed copy instead of one per read. Every write of an orchestration raises its ``version``, so a write
from another process or connection shows as a different version; a document replaced under the same version (a
damaged one planted by hand) shows as a different length.

Tasks are kept with the document written for them (:class:`WrittenTasks`), and a change is written on condition
that the stored document is still that one.

Records are immutable (frozen models that the engine copies to change), so handing the same object to several
readers is what the in-memory adapter does too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from blackboard.records import Orchestration, Task

__all__ = ["ParsedOrchestrations", "WrittenTasks"]

#: How many parsed orchestrations one adapter keeps (the most recently used).
DEFAULT_SIZE = 32

#: How many characters of documents the kept orchestrations may add up to; a parsed conversation takes several
#: times its document's size. The most recently used one is kept whatever its size: it is the one being worked on.
DEFAULT_MAX_CHARS = 4 * 1024 * 1024


class ParsedOrchestrations:
    """A small thread-safe LRU of parsed orchestrations, by id, with the version and document length they had.

    Args:
        size: at most this many are kept (0: none).
        max_chars: and their documents add up to at most this many characters, unless one alone is larger.
    """

    def __init__(self, size: int = DEFAULT_SIZE, *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if size < 0 or max_chars < 0:
            raise ValueError("size and max_chars must not be negative")
        self._size = size
        self._max_chars = max_chars
        self._chars = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[int, int, Orchestration]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def stamp(self, orchestration_id: str) -> tuple[int, int]:
        """The ``(version, document length)`` kept for ``orchestration_id``; ``(-1, -1)`` (matching no row) if none."""
        with self._lock:
            entry = self._entries.get(orchestration_id)
        return (-1, -1) if entry is None else (entry[0], entry[1])

    def get(self, orchestration_id: str, version: int, length: int) -> Orchestration | None:
        """The kept record if it is the one stored as ``version`` with a document of ``length`` characters."""
        with self._lock:
            entry = self._entries.get(orchestration_id)
            if entry is None or entry[:2] != (version, length):
                return None
            self._entries.move_to_end(orchestration_id)
            return entry[2]

    def remember(self, orchestration: Orchestration, length: int) -> None:
        """Keep ``orchestration`` as stored now, its document ``length`` characters long (call after the commit)."""
        if self._size == 0:
            return
        with self._lock:
            kept = self._entries.get(orchestration.id)
            if kept is not None and kept[0] > orchestration.version:
                return  # a newer version was kept meanwhile (another thread's later write or read)
            self._chars += length - (0 if kept is None else kept[1])
            self._entries[orchestration.id] = (orchestration.version, length, orchestration)
            self._entries.move_to_end(orchestration.id)
            while len(self._entries) > self._size or (self._chars > self._max_chars and len(self._entries) > 1):
                self._chars -= self._entries.popitem(last=False)[1][1]

    def forget(self, orchestration_id: str) -> None:
        """Drop what is kept for ``orchestration_id`` (its row was replaced or deleted outside the versioned path)."""
        with self._lock:
            kept = self._entries.pop(orchestration_id, None)
            if kept is not None:
                self._chars -= kept[1]

    @property
    def chars(self) -> int:
        """The characters of documents the kept orchestrations add up to."""
        return self._chars


#: How many written tasks one adapter keeps (the most recent): more than the widest waves in flight at once.
TASKS_SIZE = 1024


class WrittenTasks:
    """The tasks an adapter last wrote and not yet finished, each with the document it wrote for it.

    A change to one of them runs on the kept task and is written on condition that the stored document is still
    the kept one: no read, no parse. The condition is exact (the whole document), so a task written since by another
    process or connection, or set aside, fails it, and the change is then read and run again the usual way. A task
    that is done is dropped: what follows (a retry, a cancel) is rare and takes the usual way.

    Args:
        size: at most this many are kept (the most recently written; 0: none).
    """

    def __init__(self, size: int = TASKS_SIZE) -> None:
        if size < 0:
            raise ValueError("size must not be negative")
        self._size = size
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[Task, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, orchestration_id: str, task_id: str) -> tuple[Task, str] | None:
        """The kept task and the document written for it, or ``None``."""
        return self._entries.get((orchestration_id, task_id))

    def remember(self, written: list[tuple[Task, str]]) -> None:
        """Keep each task with the document it was stored as (call after the commit)."""
        if self._size == 0:
            return
        with self._lock:
            for task, doc in written:
                key = (task.orchestration_id, task.task_id)
                self._entries.pop(key, None)
                if not task.done:
                    self._entries[key] = (task, doc)
            while len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]
