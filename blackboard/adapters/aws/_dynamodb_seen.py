"""Task items as this adapter last wrote them: a read that a task change can often skip.

A task change reads the task, runs the change function on it and writes the result under ``rev = <read rev>``
(``_dynamodb_tasks``). Every write of a task item moves its revision, so the item this process wrote last is either
still the stored one or fails that condition. Using it instead of a read is therefore as safe as a read that went
stale: the write does not apply and the change reads for real. The wrapper's complete comes right after its claim,
the arbiter's ``mark_dispatched`` right after its ``add_wave``: both then cost one write and no read.

Only an applied change may rest on a remembered item: a change function that returns ``None`` ("not applied") on
one is not checked by any write, so the caller reads again before it answers "not applied".

:class:`WaveTally` counts, per wave, the tasks this process made done: a lower bound of the wave's counter, from which
a task change guesses which form of the counter update to send first (the conditions, not the guess, decide).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from blackboard.adapters.aws._dynamodb import Item, item_size

__all__ = ["SeenItems", "TaskKey", "WaveKey", "WaveTally", "key_of"]

TaskKey = tuple[str, str]
#: (orchestration id, wave number).
WaveKey = tuple[str, int]
#: Items and bytes remembered at most (least recently written go first).
_MAX_ITEMS = 4096
_MAX_BYTES = 16 * 1024 * 1024
#: Waves tallied at most (least recently moved go first).
_MAX_WAVES = 4096


def key_of(item: Item) -> TaskKey:
    """(orchestration id, task id) of a task item."""
    return item["pk"]["S"].removeprefix("ORCH#"), item["sk"]["S"].removeprefix("TASK#")


class SeenItems:
    """A bounded, thread-safe map from task key to the item this process last stored for it."""

    def __init__(self, max_items: int = _MAX_ITEMS, max_bytes: int = _MAX_BYTES) -> None:
        #: The tasks of each wave this process made done.
        self.waves = WaveTally()
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


class WaveTally:
    """A bounded, thread-safe count of the tasks of each wave (of a given size) that this process made done."""

    def __init__(self, max_waves: int = _MAX_WAVES) -> None:
        self._max_waves = max_waves
        self._lock = threading.Lock()
        self._waves: OrderedDict[WaveKey, tuple[int, int]] = OrderedDict()

    def done(self, wave: WaveKey, size: int) -> int:
        """How many tasks of ``wave`` this process made done while it had ``size`` tasks (0 if not tallied)."""
        with self._lock:
            tallied = self._waves.get(wave)
        return tallied[1] if tallied is not None and tallied[0] == size else 0

    def add(self, wave: WaveKey, size: int, count: int) -> None:
        """Count ``count`` more tasks of ``wave`` made done, at ``size``; a closed wave is :meth:`forget`-ten."""
        with self._lock:
            tallied = self._waves.pop(wave, None)
            before = tallied[1] if tallied is not None and tallied[0] == size else 0
            self._waves[wave] = (size, before + count)
            while len(self._waves) > self._max_waves:
                self._waves.popitem(last=False)

    def forget(self, wave: WaveKey) -> None:
        """Stop tallying ``wave`` (it closed)."""
        with self._lock:
            self._waves.pop(wave, None)
