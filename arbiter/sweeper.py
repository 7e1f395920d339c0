"""The watchdog: nothing hangs silently, and a crash loses nothing.

Each sweep:

1. fails running orchestrations past their deadline (naming the deadline budget);
2. times out tasks past their deadline (a ``timed_out`` result, retried if attempts remain);
3. starts the next attempt of tasks whose retry is due;
4. sends again tasks left ``pending`` (a crash between storing a wave and dispatching it);
5. continues orchestrations whose wave is done but whose results were never appended, and plans orchestrations
   whose results were appended but whose next turn never happened (a crash in the coordinator).

Steps 4 and 5 only touch records older than ``stalled_after`` so that they never race a live coordinator; after a
restart, :meth:`Sweeper.sweep` with ``resume=True`` treats everything as stalled.

A record that cannot be read never stops a sweep: the blackboard's listings skip unreadable records (and report
them), and a step that meets one while it acts on another record (a task whose orchestration is unreadable) skips
that record, logs it and counts it in ``SweepReport.unreadable_skipped``; every other orchestration is still swept.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from arbiter.coordinator import Coordinator
from blackboard import OrchestrationStatus, Task, TaskError, TaskResult, TaskState, UnreadableRecordError
from blackboard._base import utcnow

_T = TypeVar("_T")

__all__ = ["SweepReport", "Sweeper"]

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did."""

    orchestrations_failed: int = 0
    tasks_timed_out: int = 0
    tasks_retried: int = 0
    tasks_redispatched: int = 0
    orchestrations_resumed: int = 0
    unreadable_skipped: int = 0

    def __bool__(self) -> bool:
        return any(vars(self).values())


class Sweeper:
    """Runs the watchdog's checks against one coordinator's backends.

    Args:
        coordinator: the coordinator whose orchestrations are watched.
        stalled_after: seconds after which a ``pending`` task or an idle orchestration counts as stranded.
        volatile_queue: the task queue lives in process memory, so a restart loses the messages of ``dispatched``
            tasks (the embedded default); a resume then sends them again.
        clock: returns "now" (aware UTC).
    """

    def __init__(
        self,
        coordinator: Coordinator,
        *,
        stalled_after: float = 60.0,
        volatile_queue: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.coordinator = coordinator
        self.volatile_queue = volatile_queue
        self.stalled_after = stalled_after
        self._clock = clock

    def sweep(self, *, resume: bool = False) -> SweepReport:
        """Run every check once; ``resume=True`` after a restart (no live coordinator can be mid-step)."""
        report = SweepReport()
        now = self._clock()
        stalled = now if resume else now - timedelta(seconds=self.stalled_after)
        board = self.coordinator.backends.blackboard
        skipped_before = board.quarantine.counts.total()
        running = board.list_orchestrations(OrchestrationStatus.RUNNING, limit=10_000)
        for orchestration in running:
            if orchestration.deadline is not None and orchestration.deadline <= now:
                self.coordinator.finish(
                    orchestration, OrchestrationStatus.FAILED, error="budget exhausted: deadline passed"
                )
                report.orchestrations_failed += 1
        active = [TaskState.PENDING, TaskState.DISPATCHED, TaskState.RUNNING]
        for task in board.find_tasks(active, deadline_before=now, limit=1000):
            result = TaskResult(
                status=TaskState.TIMED_OUT,
                error=TaskError(type="Timeout", message="the task did not finish before its deadline"),
                attempt=task.attempt,
                finished_at=now,
            )
            report.tasks_timed_out += 1
            self._skipping_unreadable(report, task.orchestration_id, functools.partial(self._time_out, task, result))
        for task in board.find_tasks([TaskState.FAILED, TaskState.TIMED_OUT], retry_before=now, limit=1000):
            self._skipping_unreadable(
                report, task.orchestration_id, functools.partial(self.coordinator.retry_due, task)
            )
            report.tasks_retried += 1
        stranded = board.find_tasks([TaskState.PENDING], updated_before=stalled, limit=1000)
        if resume:
            # After a restart an in-process queue is empty: what was dispatched before the crash is sent again
            # (a message that still exists elsewhere only delivers a duplicate, which the conditional claim drops).
            lost = [TaskState.PENDING, TaskState.DISPATCHED] if self.volatile_queue else [TaskState.PENDING]
            stranded = board.find_tasks(lost, limit=1000)
        if stranded:
            self.coordinator.dispatch(stranded)
            report.tasks_redispatched += len(stranded)
        for orchestration in board.list_orchestrations(OrchestrationStatus.RUNNING, limit=10_000):
            if resume or orchestration.updated_at <= stalled:
                resume_one = functools.partial(self._resume, orchestration.id)
                resumed = self._skipping_unreadable(report, orchestration.id, resume_one)
                report.orchestrations_resumed += resumed or 0
        report.unreadable_skipped += board.quarantine.counts.total() - skipped_before
        if report:
            logger.info("sweep: %s", report)
        return report

    def _time_out(self, task: Task, result: TaskResult) -> None:
        if self.coordinator.record_result(task.orchestration_id, task.task_id, task.attempt, result):
            self.coordinator.continue_orchestration(task.orchestration_id)

    @staticmethod
    def _skipping_unreadable(report: SweepReport, orchestration_id: str, step: Callable[[], _T]) -> _T | None:
        """Run one step of the sweep on one record; an unreadable record it meets is logged and skipped."""
        try:
            return step()
        except UnreadableRecordError as exc:
            report.unreadable_skipped += 1
            logger.warning("orchestration_id=<%s> | sweep skipped an unreadable record: %s", orchestration_id, exc)
            return None

    def _resume(self, orchestration_id: str) -> int:
        board = self.coordinator.backends.blackboard
        orchestration = board.get_orchestration(orchestration_id)
        if orchestration.finished or self.coordinator.is_planning(orchestration_id):
            return 0
        last = orchestration.conversation[-1] if orchestration.conversation else {}
        if last.get("role") == "assistant":
            tasks = board.list_tasks(orchestration.id, wave=orchestration.wave)
            if tasks and all(t.done for t in tasks):
                self.coordinator.continue_orchestration(orchestration.id)
                return 1
            return 0
        # The conversation ends with the event or with tool results: the next model turn never happened.
        tasks = board.list_tasks(orchestration.id, wave=orchestration.wave) if orchestration.wave else []
        if all(t.done for t in tasks):
            self.coordinator.plan(orchestration)
            return 1
        return 0
