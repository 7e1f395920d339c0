"""Task items as this adapter last wrote them: a read that a task change can often skip.

A task change reads the task, runs the change function on it and writes the result under ``rev = <read rev>``
(``_dynamodb_tasks``). Every write of a task item moves its revision, so the item this process wrote last is either
still the stored one or fails that condition. Using it instead of a read is therefore as safe as a read that went
stale: the write does not apply and the change reads for real. The wrapper's complete comes right after its claim,
the arbiter's ``mark_dispatched`` right after its ``add_wave``: both then cost one write and no read.

Only an applied change may rest on a remembered item: a change function that returns ``None`` ("not applied") on
one is not checked by any write, so the caller reads again before it answers "not applied".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from blackboard.adapters.aws._dynamodb import Item, item_size

__all__ = ["SeenItems", "TaskKey", "key_of"]

TaskKey = tuple[str, str]
#: Items and bytes remembered at most (least recently written go first).
_MAX_ITEMS = 4096
_MAX_BYTES = 16 * 1024 * 1024


def key_of(item: Item) -> TaskKey:
    """(orchestration id, task id) of a task item."""
    return item["pk"]["S"].removeprefix("ORCH#"), item["sk"]["S"].removeprefix("TASK#")


class SeenItems:
    """A bounded, thread-safe map from task key to the item this process last stored for it."""

    def __init__(self, max_items: int = _MAX_ITEMS, max_bytes: int = _MAX_BYTES) -> None:
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._items: OrderedDict[TaskKey, tuple[Item, int]] = OrderedDict()
        self._bytes = 0

    def get(self, keys: Sequence[TaskKey]) -> dict[TaskKey, Item] | None:
        """The remembered items of every key, or ``None`` when one of them is not remembered."""
        with self._lock:
            found = {key: self._items[key][0] for key in keys if key in self._items}
        return found if len(found) == len(keys) else None

    def remember(self, items: Iterable[Item]) -> None:
        """Remember ``items`` as stored now (each replaces what was remembered for its key)."""
        with self._lock:
            for item in items:
                key = key_of(item)
                self._drop(key)
                size = item_size(item)
                if size > self._max_bytes:
                    continue
                self._items[key] = (item, size)
                self._bytes += size
            while self._items and (len(self._items) > self._max_items or self._bytes > self._max_bytes):
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size

    def forget(self, keys: Iterable[TaskKey]) -> None:
        """Forget the items of ``keys`` (they may have changed since)."""
        with self._lock:
            for key in keys:
                self._drop(key)

    def _drop(self, key: TaskKey) -> None:
        dropped = self._items.pop(key, None)
        if dropped is not None:
            self._bytes -= dropped[1]
