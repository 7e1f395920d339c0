"""One orchestration's updates as an iterator and an async iterator (see :meth:`arbiter.LocalRuntime.stream`).

The stream watches the runtime's blackboard before the event is submitted, so no update is missed; until the
orchestration's id is known it keeps what it is told and drops what belongs to other orchestrations once it is. The
writers' threads append under a condition; a sync consumer waits on it, an async one on a future its loop is woken
for (``call_soon_threadsafe``), so neither blocks the other's threads. The stream ends after
:class:`~arbiter.updates.OrchestrationFinished`; it stops watching then, or when closed.

An orchestration finished by another process is not told by this blackboard: while a consumer waits, the store is
read every few seconds as a fallback, so the stream ends anyway.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Sequence

from arbiter.updates import OrchestrationFinished, Update, note_written, result_of, task_updates, wave_planned
from blackboard import Blackboard, Note, Orchestration, Task, TaskState
from blackboard.ports import BlackboardObserver

__all__ = ["UpdateStream"]

#: Seconds between reads of the store while a consumer waits (for an end written by another process).
FALLBACK_SECONDS = 2.0


class UpdateStream(BlackboardObserver):
    """The updates of one orchestration, in order, ending with :class:`~arbiter.updates.OrchestrationFinished`.

    Iterate it with ``for`` or ``async for`` (once). Attributes: ``orchestration_id`` (``None`` until submitted).

    Raises:
        TimeoutError: from the iteration, when ``timeout`` seconds passed since the stream was made and the
            orchestration has not finished (it goes on; follow it again with ``rt.wait``).
    """

    def __init__(self, board: Blackboard, timeout: float | None = None) -> None:
        self.orchestration_id: str | None = None
        self._board = board
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._timeout = timeout
        self._changed = threading.Condition()
        self._early: list[Update] = []
        self._items: deque[Update] = deque()
        self._told_end = False  # an OrchestrationFinished is queued
        self._ended = False  # ... and was handed out
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        board.watch(self)

    def attach(self, orchestration_id: str) -> None:
        """Follow ``orchestration_id`` (the stream's own submit); an orchestration already finished ends it at once."""
        with self._changed:
            self.orchestration_id = orchestration_id
            early, self._early = self._early, []
        for update in early:
            self._put(update)
        self._check_store()

    def close(self) -> None:
        """Stop watching (the iteration then ends once what was told is consumed)."""
        self._board.unwatch(self)
        with self._changed:
            self._told_end = True
            self._wake()

    # ---------------------------------------------------------------- told by the blackboard (writers' threads)

    def orchestration_changed(self, orchestration: Orchestration) -> None:
        """Tell the end of the orchestration."""
        if orchestration.finished:
            self._put(OrchestrationFinished(orchestration.id, result_of(orchestration)))

    def wave_added(self, orchestration: Orchestration, tasks: Sequence[Task]) -> None:
        """Tell a planned wave."""
        self._put(wave_planned(orchestration, tasks))

    def task_changed(self, before: TaskState, task: Task) -> None:
        """Tell what the task change means."""
        for update in task_updates(before, task):
            self._put(update)

    def note_written(self, note: Note) -> None:
        """Tell a note."""
        self._put(note_written(note))

    def _put(self, update: Update) -> None:
        with self._changed:
            if self.orchestration_id is None:
                self._early.append(update)
                return
            if update.orchestration_id != self.orchestration_id or self._told_end:
                return
            self._items.append(update)
            if isinstance(update, OrchestrationFinished):
                self._told_end = True
                self._board.unwatch(self)
            self._wake()

    def _wake(self) -> None:
        self._changed.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:  # that loop is closed: its consumer is gone
                continue

    def _check_store(self) -> None:
        if self.orchestration_id is None:
            return
        record = self._board.get_orchestration(self.orchestration_id)
        if record.finished:
            self._put(OrchestrationFinished(record.id, result_of(record)))

    # ---------------------------------------------------------------- consumers

    def _take(self) -> Update | None:
        """The next update if one is queued (called under the condition); raises nothing."""
        if not self._items:
            return None
        update = self._items.popleft()
        if isinstance(update, OrchestrationFinished):
            self._ended = True
        return update

    def _wait_seconds(self) -> float:
        if self._deadline is None:
            return FALLBACK_SECONDS
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"orchestration {self.orchestration_id} still running after {self._timeout}s")
        return min(remaining, FALLBACK_SECONDS)

    def __iter__(self) -> UpdateStream:
        return self

    def __next__(self) -> Update:
        while True:
            with self._changed:
                update = self._take()
                if update is not None:
                    return update
                if self._ended or self._told_end:
                    raise StopIteration
                if self._changed.wait(self._wait_seconds()):
                    continue
            self._check_store()

    def __aiter__(self) -> UpdateStream:
        return self

    async def __anext__(self) -> Update:
        loop = asyncio.get_running_loop()
        while True:
            with self._changed:
                update = self._take()
                if update is not None:
                    return update
                if self._ended or self._told_end:
                    raise StopAsyncIteration
                future: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, future))
                seconds = self._wait_seconds()
            done, _ = await asyncio.wait({future}, timeout=seconds)
            if not done:
                await asyncio.to_thread(self._check_store)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
