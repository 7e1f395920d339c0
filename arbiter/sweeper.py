"""The watchdog: nothing hangs silently, and a crash loses nothing.

Each sweep:

1. fails running orchestrations past their deadline (naming the deadline budget);
2. times out tasks past their deadline (a ``timed_out`` result, retried if attempts remain), and takes back running
   attempts whose holder is gone: its lease expired, or its process on this host no longer exists
   (``LeaseExpired``, retried if attempts remain; see ``blackboard.leases``), without waiting for their deadline;
3. starts the next attempt of tasks whose retry is due;
4. sends again tasks left ``pending`` (a crash between storing a wave and dispatching it);
5. continues orchestrations whose wave is done but whose results were never appended, and plans orchestrations
   whose results were appended but whose next turn never happened (a crash in the coordinator).

Steps 4 and 5 only touch records older than ``stalled_after`` so that they never race a live coordinator; after a
restart, :meth:`Sweeper.sweep` with ``resume=True`` treats everything as stalled. A transient failure while resuming
one orchestration (the model throttled, the store unreachable) is logged and left for the next sweep; the others are
still swept.

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
from arbiter.exceptions import ArbiterError
from blackboard import (
    OrchestrationStatus,
    Task,
    TaskError,
    TaskResult,
    TaskState,
    UnreadableRecordError,
)
from blackboard._base import utcnow
from blackboard.leases import Holder

_T = TypeVar("_T")

__all__ = ["LEASE_EXPIRED", "SweepReport", "Sweeper"]

logger = logging.getLogger(__name__)

#: The error type of an attempt taken back from a holder that is gone.
LEASE_EXPIRED = "LeaseExpired"


@dataclass
class SweepReport:
    """What one sweep did."""

    orchestrations_failed: int = 0
    tasks_timed_out: int = 0
    tasks_reclaimed: int = 0
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
        stalled_after: seconds after which a ``pending`` task or an idle orchestration counts as stranded (default:
            the coordinator's ``settings.stalled_after_seconds``).
        volatile_queue: the task queue lives in process memory, so a restart loses the messages of ``dispatched``
            tasks (the embedded default); a resume then sends them again.
        clock: returns "now" (aware UTC).
    """

    def __init__(
        self,
        coordinator: Coordinator,
        *,
        stalled_after: float | None = None,
        volatile_queue: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.coordinator = coordinator
        self.volatile_queue = volatile_queue
        self.stalled_after = coordinator.settings.stalled_after_seconds if stalled_after is None else stalled_after
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
        report.tasks_reclaimed += self._reclaim(now)
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

    def _reclaim(self, now: datetime) -> int:
        """Take back running attempts whose holder is gone; return how many."""
        board = self.coordinator.backends.blackboard
        reclaimed = 0
        for task in board.find_tasks([TaskState.RUNNING], limit=1000):
            if task.holder is None or task.lease_expires_at is None:
                continue  # claimed without a lease: only its deadline bounds it
            expired = task.lease_expires_at <= now
            holder = Holder.parse(task.holder)
            if not expired and (holder is None or holder.alive() is not False):
                continue
            reason = "its lease expired" if expired else "its process no longer runs"
            result = TaskResult(
                status=TaskState.TIMED_OUT,
                error=TaskError(type=LEASE_EXPIRED, message=f"the attempt's holder {task.holder} is gone: {reason}"),
                attempt=task.attempt,
                finished_at=now,
            )
            retry_at = self.coordinator.settings.retry.next_attempt_at(result, now)
            transition = board.reclaim(task, result, retry_at=retry_at)
            if not transition.applied:
                continue  # renewed, finished or taken meanwhile
            reclaimed += 1
            logger.info(
                "task_id=<%s>, attempt=<%d>, holder=<%s> | reclaimed: %s",
                task.task_id,
                task.attempt,
                task.holder,
                reason,
            )
            if transition.closes_wave:
                self.coordinator.continue_orchestration(task.orchestration_id)
        return reclaimed

    def _resume(self, orchestration_id: str) -> int:
        """Resume one orchestration; a transient failure (a model or store outage) waits for the next sweep."""
        try:
            return int(self.coordinator.resume(orchestration_id))
        except ArbiterError as exc:
            if not exc.retryable:
                raise
            logger.warning("orchestration_id=<%s> | not resumed, the next sweep tries again: %s", orchestration_id, exc)
            return 0
