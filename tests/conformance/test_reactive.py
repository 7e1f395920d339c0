"""Conformance: reactive tasks join their open wave once per note version, within the budgets, on every backend."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from blackboard import (
    AgentRef,
    Backends,
    Blackboard,
    Budget,
    Orchestration,
    OrchestrationStatus,
    Reaction,
    Task,
    TaskState,
)
from blackboard.reactions import reactive_task_id
from tests.conformance.builders import event, ok, tasks_for

THREADS = 8


def running(board: Blackboard, count: int = 1, *, budget: Budget | None = None) -> tuple[Orchestration, list[Task]]:
    """An orchestration whose first wave of ``count`` tasks is running."""
    created = board.create_orchestration(Orchestration(event=event(), budget=budget or Budget())).record
    tasks = tasks_for(created, count)
    stored = board.add_wave(created, tasks)
    assert stored.applied
    for task in tasks:
        assert board.claim(created.id, task.task_id, 1).applied
    return stored.record, tasks


def reactive(cause: Task, *, note_version: int = 1, agent: str = "enricher", depth: int = 1) -> Task:
    ref = AgentRef(name=agent, version=1)
    return Task(
        orchestration_id=cause.orchestration_id,
        task_id=reactive_task_id(ref, "alarm:db1", note_version),
        wave=cause.wave,
        agent=ref,
        input={"host": "db1"},
        reaction=Reaction(
            note_key="alarm:db1",
            note_version=note_version,
            trigger=0,
            depth=depth,
            chain=[cause.agent.name, agent],
            cause_task_id=cause.task_id,
        ),
    )


def test_a_reactive_task_is_added_once_and_counted(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, (cause,) = running(board)
    first = board.add_reactive_task(reactive(cause))
    again = board.add_reactive_task(reactive(cause))
    assert first.applied and first.task.state is TaskState.PENDING and first.task.reactive
    assert not again.applied and again.refused == "duplicate" and again.task == first.task
    assert board.get_task(orchestration.id, first.task.task_id) == first.task
    assert [t.task_id for t in board.list_tasks(orchestration.id, wave=1)] == [cause.task_id, first.task.task_id]
    assert board.get_orchestration(orchestration.id).usage.tasks == 2
    other_version = board.add_reactive_task(reactive(cause, note_version=2))
    assert other_version.applied and other_version.task.task_id != first.task.task_id


def test_the_wave_closes_only_when_its_reactive_task_is_done(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, (cause,) = running(board)
    added = board.add_reactive_task(reactive(cause)).task
    assert not board.complete(orchestration.id, cause.task_id, 1, ok()).closes_wave
    assert board.claim(orchestration.id, added.task_id, 1).applied
    assert board.complete(orchestration.id, added.task_id, 1, ok()).closes_wave


def test_the_wave_closes_when_a_task_older_than_the_reaction_finishes_last(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, (cause, other) = running(board, 2)
    added = board.add_reactive_task(reactive(cause)).task
    assert not board.complete(orchestration.id, cause.task_id, 1, ok()).closes_wave
    assert board.claim(orchestration.id, added.task_id, 1).applied
    assert not board.complete(orchestration.id, added.task_id, 1, ok()).closes_wave
    assert board.complete(orchestration.id, other.task_id, 1, ok()).closes_wave


def test_a_closed_wave_or_a_finished_orchestration_takes_no_reaction(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, (cause,) = running(board)
    assert board.complete(orchestration.id, cause.task_id, 1, ok()).closes_wave
    assert board.add_reactive_task(reactive(cause)).refused == "wave closed"
    board.update_orchestration(board.get_orchestration(orchestration.id), status=OrchestrationStatus.CANCELLED)
    assert board.add_reactive_task(reactive(cause)).refused == "orchestration finished"
    assert [t.task_id for t in board.list_tasks(orchestration.id)] == [cause.task_id]


def test_a_reaction_past_the_depth_limit_is_refused(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, (cause,) = running(board, budget=Budget(max_trigger_depth=2))
    assert board.add_reactive_task(reactive(cause, depth=2)).applied
    assert board.add_reactive_task(reactive(cause, depth=3, agent="auditor")).refused == "max_trigger_depth"
    assert board.get_orchestration(orchestration.id).exhausted is None


def test_a_reaction_past_max_tasks_marks_the_budget_exhausted(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, (cause,) = running(board, budget=Budget(max_tasks=2))
    assert board.add_reactive_task(reactive(cause)).applied
    refused = board.add_reactive_task(reactive(cause, agent="auditor"))
    assert refused.refused == "max_tasks"
    stored = board.get_orchestration(orchestration.id)
    assert stored.exhausted == "max_tasks" and stored.usage.tasks == 2
    assert len(board.list_tasks(orchestration.id)) == 2


def test_racing_writers_of_one_note_add_its_task_once(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, (cause,) = running(board)
    start = threading.Barrier(THREADS)

    def add(agent: str) -> bool:
        start.wait()
        return board.add_reactive_task(reactive(cause, agent=agent)).applied

    agents = ["enricher"] * (THREADS // 2) + ["auditor"] * (THREADS // 2)
    with ThreadPoolExecutor(THREADS) as pool:
        applied = list(pool.map(add, agents))
    assert sum(applied) == 2  # one per agent, whatever the race
    assert board.get_orchestration(orchestration.id).usage.tasks == 3
    assert not board.complete(orchestration.id, cause.task_id, 1, ok()).closes_wave
    reactive_ids = [t.task_id for t in board.list_tasks(orchestration.id) if t.reactive]
    closes = []
    for task_id in reactive_ids:
        board.claim(orchestration.id, task_id, 1)
        closes.append(board.complete(orchestration.id, task_id, 1, ok()).closes_wave)
    assert closes == [False, True]
