"""Conformance: random sequences of task changes agree with a reference model of the state machine.

The reference model is written from ARCHITECTURE "Records" (the task life cycle) independently of the adapters;
hypothesis drives both with the same operations, including duplicates, stale attempts and out-of-order arrivals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blackboard import Backends, TaskError, TaskResult, TaskState
from tests.conformance.builders import with_wave

ACTIVE = {TaskState.PENDING, TaskState.DISPATCHED, TaskState.RUNNING}


@dataclass
class ModelTask:
    state: TaskState = TaskState.PENDING
    attempt: int = 1
    retry_pending: bool = False

    @property
    def done(self) -> bool:
        if self.state in (TaskState.SUCCEEDED, TaskState.CANCELLED):
            return True
        return self.state in (TaskState.FAILED, TaskState.TIMED_OUT) and not self.retry_pending


@dataclass(frozen=True)
class Op:
    kind: str
    task: int
    attempt: int
    retry: bool = False
    retryable: bool = True


def apply_to_model(task: ModelTask, op: Op, max_attempts: int) -> bool:
    if op.kind == "cancel":
        if task.done:
            return False
        task.state, task.retry_pending = TaskState.CANCELLED, False
        return True
    if op.attempt != task.attempt:
        return False
    if op.kind == "dispatch" and task.state is TaskState.PENDING:
        task.state = TaskState.DISPATCHED
        return True
    if op.kind == "claim" and task.state in (TaskState.PENDING, TaskState.DISPATCHED):
        task.state = TaskState.RUNNING
        return True
    if op.kind in ("succeed", "fail", "time_out") and task.state in ACTIVE:
        task.state = {"succeed": TaskState.SUCCEEDED, "fail": TaskState.FAILED, "time_out": TaskState.TIMED_OUT}[
            op.kind
        ]
        task.retry_pending = op.kind != "succeed" and op.retry and op.retryable and task.attempt < max_attempts
        return True
    if op.kind == "retry" and task.state in (TaskState.FAILED, TaskState.TIMED_OUT) and task.retry_pending:
        task.state, task.attempt, task.retry_pending = TaskState.PENDING, task.attempt + 1, False
        return True
    return False


ops = st.builds(
    Op,
    kind=st.sampled_from(["dispatch", "claim", "succeed", "fail", "time_out", "retry", "cancel"]),
    task=st.integers(0, 3),
    attempt=st.integers(1, 4),
    retry=st.booleans(),
    retryable=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(1, 4), max_attempts=st.integers(1, 3), sequence=st.lists(ops, max_size=40))
def test_random_changes_follow_the_state_machine(
    backends: Backends, size: int, max_attempts: int, sequence: list[Op]
) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, size, max_attempts=max_attempts)
    model = [ModelTask() for _ in range(size)]
    closes = 0
    for op in sequence:
        if op.task >= size:
            continue
        task_id = tasks[op.task].task_id
        expected = apply_to_model(model[op.task], op, max_attempts)
        if op.kind == "dispatch":
            stale = tasks[op.task].model_copy(update={"attempt": op.attempt})
            outcome = board.mark_dispatched([stale])[0]
        elif op.kind == "claim":
            outcome = board.claim(orchestration.id, task_id, op.attempt)
        elif op.kind == "retry":
            outcome = board.retry(orchestration.id, task_id, op.attempt)
        elif op.kind == "cancel":
            outcome = board.cancel(orchestration.id, task_id)
        else:
            status = {"succeed": TaskState.SUCCEEDED, "fail": TaskState.FAILED, "time_out": TaskState.TIMED_OUT}[
                op.kind
            ]
            error = None if status is TaskState.SUCCEEDED else TaskError(type="E", retryable=op.retryable)
            retry_at = orchestration.created_at + timedelta(seconds=1) if op.retry and error else None
            result = TaskResult(status=status, error=error)
            outcome = board.complete(orchestration.id, task_id, op.attempt, result, retry_at=retry_at)
        assert outcome.applied == expected, op
        assert (outcome.task.state, outcome.task.attempt, outcome.task.done) == (
            model[op.task].state,
            model[op.task].attempt,
            model[op.task].done,
        ), op
        closes += outcome.closes_wave
        if outcome.closes_wave:
            assert all(m.done for m in model), "a wave closed while a task could still run"
    assert closes == (1 if all(m.done for m in model) else 0)
    stored = board.list_tasks(orchestration.id)
    assert [(t.state, t.attempt) for t in stored] == [(m.state, m.attempt) for m in model]
    for task in stored:
        # The history holds one result per finished earlier attempt, in order.
        assert [r.attempt for r in task.attempts] == list(range(1, len(task.attempts) + 1))
