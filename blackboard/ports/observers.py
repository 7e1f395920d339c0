"""Observers of a blackboard: told of every change one :class:`~blackboard.ports.Blackboard` instance applied.

A process that wants to follow its orchestrations as they move (the runtime's update stream, a live view) watches the
blackboard object its writers share instead of polling the store. An observer is called in the writer's thread,
right after the write applied, once per applied change (never for a duplicate or a stale request that changed
nothing). It must be quick and must not block: hand the change to a queue. An observer that raises is logged and
does not fail the write.

What other processes write (``arbiter worker`` processes, other Lambdas) is not seen: observers are in-process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from blackboard.records import Note, Orchestration, Task
from blackboard.states import TaskState

__all__ = ["BlackboardObserver", "Observers"]

logger = logging.getLogger(__name__)


class BlackboardObserver:
    """Base of an observer; override the calls you need (each does nothing here)."""

    def orchestration_changed(self, orchestration: Orchestration) -> None:
        """An orchestration was created or changed (its status, conversation, usage...), as now stored."""

    def wave_added(self, orchestration: Orchestration, tasks: Sequence[Task]) -> None:
        """A wave of ``pending`` tasks was stored with the orchestration (``orchestration.wave`` is its number)."""

    def task_changed(self, before: TaskState, task: Task) -> None:
        """A task changed from state ``before`` to ``task`` as now stored (``before`` may equal its state: a lease)."""

    def note_written(self, note: Note) -> None:
        """A note was written (``note.version`` 1 for a new key)."""


class Observers:
    """The observers of one blackboard instance (thread-safe; a copy is read per change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._observers: tuple[BlackboardObserver, ...] = ()

    def add(self, observer: BlackboardObserver) -> None:
        """Start telling ``observer``."""
        with self._lock:
            self._observers = (*self._observers, observer)

    def remove(self, observer: BlackboardObserver) -> None:
        """Stop telling ``observer`` (nothing happens if it was not watching)."""
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not observer)

    def __bool__(self) -> bool:
        return bool(self._observers)

    def orchestration_changed(self, orchestration: Orchestration) -> None:
        """Tell every observer."""
        for observer in self._observers:
            self._guard(observer.orchestration_changed, orchestration)

    def wave_added(self, orchestration: Orchestration, tasks: Sequence[Task]) -> None:
        """Tell every observer."""
        for observer in self._observers:
            self._guard(observer.wave_added, orchestration, tasks)

    def task_changed(self, before: TaskState, task: Task) -> None:
        """Tell every observer."""
        for observer in self._observers:
            self._guard(observer.task_changed, before, task)

    def note_written(self, note: Note) -> None:
        """Tell every observer."""
        for observer in self._observers:
            self._guard(observer.note_written, note)

    @staticmethod
    def _guard(call: object, *args: object) -> None:
        try:
            call(*args)  # type: ignore[operator]
        except Exception:  # an observer's bug must not fail the engine's write, which already applied
            logger.exception("observer=<%r> | a blackboard observer raised; the change it was told of stands", call)
