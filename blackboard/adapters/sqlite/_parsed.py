"""The orchestrations a :class:`~blackboard.adapters.SqliteBlackboard` last wrote or read, kept parsed.

An orchestration's document holds its whole conversation: near the end of a wide run it is hundreds of kilobytes,
and every planning step reads it back. A read whose stored ``version`` and document length both match the entry
kept here is answered with the kept record: the document is neither transferred nor parsed again, and the process
holds one parsed copy instead of one per read. Every write of an orchestration raises its ``version``, so a write
from another process or connection shows as a different version; a document replaced under the same version (a
damaged one planted by hand) shows as a different length.

Records are immutable (frozen models that the engine copies to change), so handing the same object to several
readers is what the in-memory adapter does too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from blackboard.records import Orchestration

__all__ = ["ParsedOrchestrations"]

#: How many parsed orchestrations one adapter keeps (the most recently used).
DEFAULT_SIZE = 32


class ParsedOrchestrations:
    """A small thread-safe LRU of parsed orchestrations, by id, with the version and document length they had."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError("size must not be negative")
        self._size = size
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
            self._entries[orchestration.id] = (orchestration.version, length, orchestration)
            self._entries.move_to_end(orchestration.id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, orchestration_id: str) -> None:
        """Drop what is kept for ``orchestration_id`` (its row was replaced or deleted outside the versioned path)."""
        with self._lock:
            self._entries.pop(orchestration_id, None)
