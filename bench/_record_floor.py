"""The floor of the engine's per-task records: ``floor-memory`` and ``floor-sqlite`` in ``bench/peers.py``.

What every design of this engine must do per task to keep its exactly-once records, done as cheaply as the blackboard
port allows, and nothing else. Per wave of ``width`` tasks:

- each task is made as the coordinator makes it (an agent version, attempts, a deadline, a completion token) and its
  input is checked against the agent's input schema;
- the wave is persisted with its orchestration in one transaction, then claimed (with a holder and a lease) and
  completed: one transaction per transition for the whole wave, not one per task. Being run where it was planned, it
  is never sent, so it is claimed straight from ``pending`` (which the claim allows) and not marked dispatched;
- each call is made, and the wave must close exactly once.

Left out: the planner, the queue, the worker threads, the completion events, the stats and the results message. So
this is a lower bound of the engine's cost per task on that store, not a way to run tasks: no per-task transaction,
message or signal is counted, and a crash in it would leave the tasks to no one.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from blackboard import AgentRef, Blackboard, Completion, Event, Orchestration, Task, TaskResult, TaskState
from blackboard._base import utcnow
from blackboard.adapters import MemoryBlackboard, SqliteBlackboard, SqliteDatabase
from blackboard.messages import new_completion_token
from wrapper.schemas import input_problem

__all__ = ["record_floor"]

INPUT_SCHEMA = {"type": "object", "properties": {"i": {"type": "integer"}}, "required": ["i"]}
AGENT = AgentRef(name="noop", version=1)


def noop(i: int) -> int:
    return i


def _waves(board: Blackboard, waves: int, width: int) -> float:
    """Run ``waves`` waves of ``width`` no-op tasks on ``board``: the seconds they took (the set-up is not timed)."""
    event = Event.parse({"source": "bench", "detail-type": "floor", "detail": {}})
    orchestration = board.create_orchestration(Orchestration(event=event)).record
    started = time.perf_counter()
    for wave in range(waves):
        deadline = utcnow() + timedelta(seconds=60)
        tasks = []
        for i in range(width):
            task = Task(
                orchestration_id=orchestration.id,
                task_id=f"w{wave}t{i}",
                wave=orchestration.wave + 1,
                agent=AGENT,
                input={"i": i},
                max_attempts=3,
                deadline=deadline,
                token=new_completion_token(),
            )
            if input_problem(INPUT_SCHEMA, task.input) is not None:
                raise AssertionError(f"the floor's own input was refused: {task.input}")
            tasks.append(task)
        orchestration = board.add_wave(orchestration, tasks).record
        claims = board.claim_many(tasks, holder="floor", lease_seconds=60)
        if not all(c.applied for c in claims):
            raise AssertionError("a claim of the floor's own wave did not apply")
        completions = [
            Completion(t.orchestration_id, t.task_id, 1, TaskResult(status=TaskState.SUCCEEDED, output=noop(**t.input)))
            for t in tasks
        ]
        closes = sum(c.closes_wave for c in board.complete_many(completions))
        if closes != 1:
            raise AssertionError(f"wave {wave + 1} closed {closes} times")
    return time.perf_counter() - started


def record_floor(store: str) -> Callable[[int, int, int], float]:
    """The floor's run on ``store`` (``memory`` or ``sqlite``): (waves, width, workers) -> seconds of the waves.

    ``workers`` does not apply: one thread writes every transition (more would only add hand-offs). The store's set-up
    (the SQLite file and its schema) is not timed, as for ``arbiter-sqlite``.
    """
    if store == "memory":
        return lambda waves, width, workers: _waves(MemoryBlackboard(), waves, width)
    if store != "sqlite":
        raise ValueError(f"unknown store {store!r} (memory, sqlite)")

    def on_sqlite(waves: int, width: int, workers: int) -> float:
        with tempfile.TemporaryDirectory() as home:
            database = SqliteDatabase(Path(home) / "floor.db")  # the runtime's default: synchronous=NORMAL
            try:
                return _waves(SqliteBlackboard(database), waves, width)
            finally:
                database.close()

    return on_sqlite
