"""How the DynamoDB blackboard's index writes spread, and what the watchdog's reads cost (on moto, in process).

Run: ``.venv/bin/python bench/dynamodb_indexes.py`` (or ``make bench``). Prints two figures:

1. **Index partitions written.** N orchestrations of one wave of K tasks each go through every transition
   (create, add the wave, dispatch, claim, complete, finish). Each write of an item with index keys adds an index
   entry under a partition key (``gsi1pk``, ``gsi2pk``); the figure is the number of distinct partition-key values
   written, and the share of index writes that the busiest value took (DynamoDB serves one partition key from one
   partition: ~1,000 writes a second), and the write units the index entries cost, estimated by DynamoDB's rules
   (an entry of an index with projection ALL is a copy of the whole item, a unit per KB rounded up; a KEYS_ONLY
   entry is under 1 KB: one unit).
2. **The sweep's read cost.** With those orchestrations running (tasks claimed, deadlines ahead, ~8 KB of
   conversation each), one sweep of the watchdog (``arbiter.sweeper.Sweeper``, nothing due): calls by operation
   and read capacity units, estimated by DynamoDB's rules from the size of what each call returns (per 4 KB,
   rounded up, per Query and per BatchGetItem item; consistent reads count 1, eventually consistent 0.5).

The script only uses the blackboard's port and botocore's event hooks, so the same file measures an earlier layout
when run from a checkout of an earlier release (the README gives the figures of both).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arbiter.coordinator import Coordinator
from arbiter.planner import Planner
from arbiter.sweeper import Sweeper
from blackboard import AgentRef, Event, Orchestration, OrchestrationStatus, Task, TaskResult, TaskState
from blackboard.adapters.aws import DynamoDBBlackboard
from blackboard.adapters.aws._dynamodb import item_size
from tests.aws_support import dynamodb_client, moto_dynamodb
from wrapper.testing import ScriptedModel

ORCHESTRATIONS = 20
TASKS = 10
INDEX_KEYS = ("gsi1pk", "gsi2pk")
RESULT = TaskResult(status=TaskState.SUCCEEDED, output={"ok": True}, duration_ms=0.1)
CONVERSATION = [{"role": "user", "content": [{"text": "x" * 8000}]}]


class IndexWrites:
    """Index entries each write adds, by partition key, from the requests botocore sends."""

    def __init__(self, client: Any, table: str, projection: str) -> None:
        self.table = table
        self.projection = projection
        self.by_key: Counter[str] = Counter()
        self.units = 0
        self._sizes: dict[tuple[str, str], int] = {}  # last size of each item put, for the entries of an update
        client.meta.events.register("provide-client-params.dynamodb", self._count)

    def _count(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "PutItem" and params["TableName"] == self.table:
            self._item(params["Item"])
        elif model.name == "UpdateItem" and params["TableName"] == self.table:
            values = params.get("ExpressionAttributeValues", {})
            size = self._sizes.get((params["Key"]["pk"]["S"], params["Key"]["sk"]["S"]), 1024)
            for key in INDEX_KEYS:
                if f":{key}" in values:
                    self._entry(values[f":{key}"]["S"], size)
        elif model.name == "TransactWriteItems":
            for entry in params["TransactItems"]:
                if "Put" in entry and entry["Put"]["TableName"] == self.table:
                    self._item(entry["Put"]["Item"])

    def _item(self, item: dict[str, Any]) -> None:
        size = self._sizes[(item["pk"]["S"], item["sk"]["S"])] = item_size(item)
        for key in INDEX_KEYS:
            if key in item:
                self._entry(item[key]["S"], size)

    def _entry(self, partition: str, size: int) -> None:
        self.by_key[partition] += 1
        self.units += math.ceil(size / 1024) if self.projection == "ALL" else 1


class Reads:
    """Calls and estimated read capacity units of Query and BatchGetItem."""

    def __init__(self, client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self.units = 0.0
        self._consistent: dict[int, bool] = {}
        client.meta.events.register("provide-client-params.dynamodb", self._request)
        client.meta.events.register("after-call.dynamodb", self._response)

    def _request(self, params: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        if model.name == "Query":
            context["consistent"] = bool(params.get("ConsistentRead"))
        elif model.name == "BatchGetItem":
            context["consistent"] = all(spec.get("ConsistentRead") for spec in params["RequestItems"].values())

    def _response(self, parsed: dict[str, Any], model: Any, context: Any, **_: Any) -> None:
        if model.name not in ("Query", "BatchGetItem"):
            return
        self.calls[model.name] += 1
        rate = 1.0 if context.get("consistent") else 0.5
        if model.name == "Query":
            size = sum(item_size(item) for item in parsed.get("Items", []))
            self.units += max(1, math.ceil(size / 4096)) * rate
        else:
            for items in parsed.get("Responses", {}).values():
                self.units += sum(max(1, math.ceil(item_size(item) / 4096)) * rate for item in items)


def _orchestrations(board: DynamoDBBlackboard, count: int, *, finish: bool) -> None:
    for n in range(count):
        event = Event.parse({"source": "bench", "detail-type": "run", "detail": {"n": n}})
        orchestration = board.create_orchestration(Orchestration(event=event, conversation=CONVERSATION)).record
        tasks = [
            Task(
                orchestration_id=orchestration.id,
                task_id=f"t{i}",
                wave=1,
                agent=AgentRef(name="noop", version=1),
                deadline=orchestration.created_at.replace(year=orchestration.created_at.year + 1),
            )
            for i in range(TASKS)
        ]
        orchestration = board.add_wave(orchestration, tasks).record
        board.mark_dispatched(tasks)
        for task in tasks:
            board.claim(orchestration.id, task.task_id, 1)
        if finish:
            for task in tasks:
                board.complete(orchestration.id, task.task_id, 1, RESULT)
            board.update_orchestration(orchestration, status=OrchestrationStatus.COMPLETED, output="done")


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with moto_dynamodb() as tables:
        client = dynamodb_client()
        description = client.describe_table(TableName=tables.blackboard)["Table"]
        projection = description["GlobalSecondaryIndexes"][0]["Projection"]["ProjectionType"]
        writes = IndexWrites(client, tables.blackboard, projection)
        board = DynamoDBBlackboard(tables.blackboard, client=client)
        _orchestrations(board, ORCHESTRATIONS, finish=True)
        total = sum(writes.by_key.values())
        key, busiest = writes.by_key.most_common(1)[0]
        print(f"index partitions: {ORCHESTRATIONS} orchestrations x {TASKS} tasks, every transition ({projection})")
        print(f"  index entries written        {total}")
        print(f"  distinct partition keys      {len(writes.by_key)}")
        print(f"  busiest key's share          {busiest / total:.0%} ({key})")
        print(f"  index write units (est.)     {writes.units:,}")

    with moto_dynamodb() as tables:
        client = dynamodb_client()
        board = DynamoDBBlackboard(tables.blackboard, client=client)
        _orchestrations(board, ORCHESTRATIONS, finish=False)
        reads = Reads(client)
        coordinator = Coordinator(board_backends(board), Planner(ScriptedModel([]), "bench"))
        report = Sweeper(coordinator, stalled_after=3600).sweep()
        assert not report, report
        calls = ", ".join(f"{n} {op}" for op, n in sorted(reads.calls.items()))
        print(f"one sweep, {ORCHESTRATIONS} running orchestrations x {TASKS} running tasks, nothing due")
        print(f"  calls                        {sum(reads.calls.values())} ({calls})")
        print(f"  read capacity units (est.)   {reads.units:.1f}")


def board_backends(board: DynamoDBBlackboard) -> Any:
    """Backends around ``board`` (the sweep only reads the blackboard)."""
    from blackboard import Backends
    from blackboard.adapters import InProcessEventBus, MemoryCodeStore, MemoryRegistry, MemoryTaskQueue

    return Backends(board, MemoryRegistry(), MemoryCodeStore(), MemoryTaskQueue(), InProcessEventBus())


if __name__ == "__main__":
    main()
