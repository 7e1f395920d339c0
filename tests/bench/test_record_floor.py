"""``floor-memory`` and ``floor-sqlite`` in ``bench/peers.py``: the per-task records alone, written for real."""

from __future__ import annotations

import pytest

from bench._record_floor import _waves, record_floor
from blackboard import Task, TaskState
from blackboard.adapters import MemoryBlackboard
from blackboard.ports import BlackboardObserver


class Steps(BlackboardObserver):
    def __init__(self) -> None:
        self.seen: list[tuple[TaskState, TaskState]] = []

    def task_changed(self, before: TaskState, task: Task) -> None:
        self.seen.append((before, task.state))


def test_the_floor_claims_then_completes_every_task_with_a_token_and_a_deadline() -> None:
    board = MemoryBlackboard()
    steps = Steps()
    board.watch(steps)
    seconds = _waves(board, 3, 4)
    assert seconds > 0
    (orchestration,) = board.list_orchestrations()
    assert orchestration.wave == 3
    tasks = board.list_tasks(orchestration.id)
    assert len(tasks) == 12
    assert {t.state for t in tasks} == {TaskState.SUCCEEDED}
    assert all(t.token and t.deadline is not None for t in tasks)
    claimed, completed = (TaskState.PENDING, TaskState.RUNNING), (TaskState.RUNNING, TaskState.SUCCEEDED)
    assert steps.seen == ([claimed] * 4 + [completed] * 4) * 3
    assert [t.result.output for t in tasks if t.wave == 2 and t.result] == [0, 1, 2, 3]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_the_floor_runs_on_each_store(store: str) -> None:
    assert record_floor(store)(2, 3, 2) > 0


def test_an_unknown_store_is_named() -> None:
    with pytest.raises(ValueError, match="unknown store 'dynamodb'"):
        record_floor("dynamodb")
