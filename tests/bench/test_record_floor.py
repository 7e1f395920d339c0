"""``floor-memory`` and ``floor-sqlite`` in ``bench/peers.py``: the per-task records alone, written for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench._record_floor import _waves, record_floor
from blackboard import Task, TaskState
from blackboard.adapters import MemoryBlackboard
from blackboard.ports import BlackboardObserver

ROOT = Path(__file__).resolve().parents[2]


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


def test_the_peers_bench_prints_the_floor_rows_without_the_peers_environment() -> None:
    argv = ["--engines", "floor-memory,floor-sqlite", "--waves", "2", "--widths", "3", "--repeat", "1"]
    done = subprocess.run(
        [sys.executable, "bench/peers.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("floor-")]
    assert [row[:3] for row in rows] == [["floor-memory", "3", "2"], ["floor-sqlite", "3", "2"]]
    assert all(float(row[3]) > 0 for row in rows)
