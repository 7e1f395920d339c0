"""The watchdog takes back attempts whose holder is gone, without waiting for their deadline (on every backend)."""

from __future__ import annotations

from datetime import timedelta

from arbiter.coordinator import Coordinator
from arbiter.planner import Planner
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.sweeper import LEASE_EXPIRED, Sweeper
from blackboard import Backends, Task, TaskError, TaskResult, TaskState
from blackboard.leases import Holder, this_process
from tests.conformance.builders import with_wave
from tests.conftest import ManualClock
from wrapper.testing import ScriptedModel

TIMEOUT = TaskResult(status=TaskState.TIMED_OUT, error=TaskError(type="Timeout", message="set up"))


def _far_deadlines(backends: Backends, clock: ManualClock, count: int) -> list[Task]:
    """A wave of ``count`` dispatched tasks whose deadline is ten minutes away (a slow agent's)."""
    board = backends.blackboard
    orchestration, tasks = with_wave(board, count)
    board.mark_dispatched(tasks)
    deadline = clock.now() + timedelta(minutes=10)
    # Deadlines come with an attempt: fail attempt 1 at once and start attempt 2 with the far deadline.
    for task in tasks:
        board.claim(orchestration.id, task.task_id, 1)
        board.complete(orchestration.id, task.task_id, 1, TIMEOUT, retry_at=clock.now())
        board.retry(orchestration.id, task.task_id, 1, deadline=deadline)
    return board.list_tasks(orchestration.id)


def test_the_watchdog_reclaims_dead_and_expired_holders_only(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    me = this_process()
    dead = Holder(host=me.host, pid=me.pid, started=f"{me.started}-earlier")  # this pid, another process: gone
    remote = "another-host/4242/777"
    gone, silent, alive = _far_deadlines(backends, clock, 3)
    board.claim(gone.orchestration_id, gone.task_id, 2, holder=str(dead), lease_seconds=10)
    board.claim(silent.orchestration_id, silent.task_id, 2, holder=remote, lease_seconds=10)
    board.claim(alive.orchestration_id, alive.task_id, 2, holder=str(me), lease_seconds=10)
    coordinator = Coordinator(backends, Planner(ScriptedModel([]), SYSTEM_PROMPT), clock=clock.now)
    sweeper = Sweeper(coordinator, clock=clock.now)

    first = sweeper.sweep()
    assert first.tasks_reclaimed == 1  # the dead process at once; the remote one may still be working
    taken = board.get_task(gone.orchestration_id, gone.task_id)
    assert taken.state in (TaskState.TIMED_OUT, TaskState.PENDING)
    assert [a.error.type for a in [*taken.attempts, *([taken.result] if taken.result else [])] if a.error][-1] == (
        LEASE_EXPIRED
    )
    assert board.get_task(silent.orchestration_id, silent.task_id).state is TaskState.RUNNING

    clock.advance(5)
    board.renew_lease(alive.orchestration_id, alive.task_id, 2, str(me), 10)
    clock.advance(6)  # the remote holder renewed nothing for 11 s; this process renewed 6 s ago
    second = sweeper.sweep()
    assert second.tasks_reclaimed == 1
    assert board.get_task(silent.orchestration_id, silent.task_id).state is not TaskState.RUNNING
    assert board.get_task(alive.orchestration_id, alive.task_id).state is TaskState.RUNNING
    # The old holders' late results count for nothing.
    late = TaskResult(status=TaskState.SUCCEEDED, output="late")
    assert not board.complete(gone.orchestration_id, gone.task_id, 2, late).applied
    assert not board.complete(silent.orchestration_id, silent.task_id, 2, late).applied
