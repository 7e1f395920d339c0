"""DynamoDB calls per operation of the DynamoDB blackboard, for one wave of N tasks (on moto, in process).

Run: ``.venv/bin/python bench/dynamodb.py`` (or ``make bench``). Prints, for each wave size, the calls each step
makes (by DynamoDB operation) and the items written in transactions. Calls are what DynamoDB bills and what adds
latency on AWS; moto's own speed says nothing about AWS, so no times are printed.

Steps: create the orchestration; add the wave (N tasks); mark it dispatched; claim and complete every task one by one
(what a wrapper does per message), or in one batch (``claim_many``/``complete_many``); then list the wave's tasks
(what the completion that closes the wave reads to continue).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blackboard import AgentRef, Completion, Event, Orchestration, Task, TaskResult, TaskState
from blackboard.adapters.aws import DynamoDBBlackboard
from tests.aws_support import dynamodb_client, moto_dynamodb

RESULT = TaskResult(status=TaskState.SUCCEEDED, output={"ok": True}, duration_ms=0.1)
SIZES = (1, 10, 50)


class Calls:
    """Counts DynamoDB calls (and items in TransactWriteItems) through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.by_operation: Counter[str] = Counter()
        self.transaction_items = 0
        client.meta.events.register("provide-client-params.dynamodb", self._count)

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.by_operation[model.name] += 1
        if model.name == "TransactWriteItems":
            self.transaction_items += len(params["TransactItems"])

    def measure(self, step: Callable[[], object]) -> str:
        self.by_operation.clear()
        self.transaction_items = 0
        step()
        calls = ", ".join(f"{n} {op}" for op, n in sorted(self.by_operation.items()))
        items = f" ({self.transaction_items} items in transactions)" if self.transaction_items else ""
        return f"{sum(self.by_operation.values()):4d} calls: {calls}{items}"


def _wave(board: DynamoDBBlackboard, size: int) -> tuple[Orchestration, list[Task]]:
    event = Event.parse({"source": "bench", "detail-type": "run", "detail": {}})
    orchestration = board.create_orchestration(Orchestration(event=event)).record
    tasks = [
        Task(orchestration_id=orchestration.id, task_id=f"t{i}", wave=1, agent=AgentRef(name="noop", version=1))
        for i in range(size)
    ]
    return orchestration, tasks


def report(board: DynamoDBBlackboard, calls: Calls, size: int) -> None:
    """Print the calls of each step for one wave of ``size`` tasks."""
    print(f"wave of {size} task(s)")
    orchestration, tasks = _wave(board, size)
    rows = [
        ("add_wave", lambda: board.add_wave(orchestration, tasks)),
        ("mark_dispatched", lambda: board.mark_dispatched(tasks)),
        (f"claim x{size}", lambda: [board.claim(orchestration.id, t.task_id, 1) for t in tasks]),
    ]
    head, last = tasks[:-1], tasks[-1]
    if head:
        rows.append(
            (f"complete x{len(head)}", lambda: [board.complete(orchestration.id, t.task_id, 1, RESULT) for t in head])
        )
    rows.append(("complete (closes)", lambda: board.complete(orchestration.id, last.task_id, 1, RESULT)))
    rows.append(("list_tasks", lambda: board.list_tasks(orchestration.id, wave=1)))
    batch, batch_tasks = _wave(board, size)
    board.add_wave(batch, batch_tasks)
    board.mark_dispatched(batch_tasks)
    done = [Completion(batch.id, t.task_id, 1, RESULT) for t in batch_tasks]
    rows.append(("claim_many", lambda: board.claim_many(batch_tasks)))
    rows.append(("complete_many", lambda: board.complete_many(done)))
    for label, step in rows:
        print(f"  {label:<18} {calls.measure(step)}")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with moto_dynamodb() as tables:
        client = dynamodb_client()
        calls = Calls(client)
        board = DynamoDBBlackboard(tables.blackboard, client=client)
        for size in SIZES:
            report(board, calls, size)


if __name__ == "__main__":
    main()
