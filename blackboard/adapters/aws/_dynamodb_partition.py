"""The keys of an orchestration's partition as this adapter last read them, while they are known to be complete.

A finishing orchestration sets the expiry of every other item of its partition, whose keys it needs. The coordinator
finishes an orchestration mostly right after it read the partition whole (:meth:`DynamoDBBlackboard.read_wave`) and
planned the answer, and nothing of this process created an item there since: those keys then spare the Query.

The keys stay usable only along the orchestration's versions this adapter wrote itself with plain compare-and-set
puts (the results, a planning lease and its renewals), which create no item. A version written elsewhere, or any item
this adapter creates in the partition (a wave, a reactive task, a new note), drops them. A note another process
first writes while the turn is planned is then left without an expiry, as one written after the finish always is
(the expiry is housekeeping).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from blackboard.adapters.aws._dynamodb import Item

__all__ = ["PartitionKeys"]

#: Orchestrations remembered at most (least recently read go first).
_MAX_ORCHESTRATIONS = 256


class PartitionKeys:
    """A bounded, thread-safe map from orchestration id to (its version, the keys of its other items)."""

    def __init__(self, max_orchestrations: int = _MAX_ORCHESTRATIONS) -> None:
        self._max = max_orchestrations
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[int, list[Item]]] = OrderedDict()

    def remember(self, orchestration_id: str, version: int, keys: list[Item]) -> None:
        """The partition was just read whole at ``version``: ``keys`` are all its items but the orchestration."""
        with self._lock:
            self._known[orchestration_id] = (version, keys)
            self._known.move_to_end(orchestration_id)
            while len(self._known) > self._max:
                self._known.popitem(last=False)

    def moved(self, orchestration_id: str, before: int, after: int) -> None:
        """This adapter wrote version ``after`` over ``before`` with a plain put (no item created)."""
        with self._lock:
            known = self._known.get(orchestration_id)
            if known is not None:
                if known[0] == before:
                    self._known[orchestration_id] = (after, known[1])
                else:
                    del self._known[orchestration_id]

    def forget(self, orchestration_id: str) -> None:
        """An item may have been created in the partition."""
        with self._lock:
            self._known.pop(orchestration_id, None)

    def take(self, orchestration_id: str, version: int) -> list[Item] | None:
        """The keys, if known complete at ``version`` (each is taken once), else ``None``."""
        with self._lock:
            known = self._known.pop(orchestration_id, None)
        return None if known is None or known[0] != version else known[1]
