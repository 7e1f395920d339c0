"""One unreadable orchestration does not stop the watchdog: deadlines and retries of the others still happen."""

from __future__ import annotations

from datetime import timedelta

from arbiter.coordinator import Coordinator
from arbiter.planner import Planner
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.sweeper import Sweeper
from blackboard import AgentRef, Backends, Orchestration, OrchestrationStatus, Task, TaskState
from tests.conformance import corrupt
from tests.conformance.builders import event, failed
from tests.conftest import ManualClock
from wrapper.testing import ScriptedModel


def _with_task(
    backends: Backends, clock: ManualClock, *, deadline_in: float, max_attempts: int = 3
) -> tuple[Orchestration, Task]:
    board = backends.blackboard
    orchestration = board.create_orchestration(Orchestration(event=event())).record
    task = Task(
        orchestration_id=orchestration.id,
        task_id="t1",
        wave=1,
        agent=AgentRef(name="cook", version=1),
        deadline=clock.now() + timedelta(seconds=deadline_in),
        max_attempts=max_attempts,
    )
    applied = board.add_wave(orchestration, [task])
    assert applied.applied
    return applied.record, task


def test_sweep_goes_on_past_an_unreadable_orchestration(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    coordinator = Coordinator(backends, Planner(ScriptedModel([]), SYSTEM_PROMPT), clock=clock.now)
    # A damaged orchestration with its last task past its deadline: timing it out closes the wave, and continuing
    # the orchestration reads its record.
    bad, _ = _with_task(backends, clock, deadline_in=1, max_attempts=1)
    # Another one past its own deadline, and a third with a failed task whose retry is due.
    late = board.create_orchestration(Orchestration(event=event(), deadline=clock.now() + timedelta(seconds=1)))
    retrying, task = _with_task(backends, clock, deadline_in=3600)
    board.mark_dispatched([task])
    board.complete(retrying.id, task.task_id, 1, failed(), retry_at=clock.now() + timedelta(seconds=1))
    corrupt.orchestration(backends, bad.id, corrupt.DAMAGE["invalid-json"])
    clock.advance(5)

    report = Sweeper(coordinator, stalled_after=3600, clock=clock.now).sweep()

    assert board.get_orchestration(late.record.id).status is OrchestrationStatus.FAILED
    assert report.orchestrations_failed == 1
    assert board.get_task(retrying.id, task.task_id).attempt == 2 and report.tasks_retried == 1
    assert board.get_task(bad.id, "t1").state is TaskState.TIMED_OUT
    assert report.unreadable_skipped >= 1
