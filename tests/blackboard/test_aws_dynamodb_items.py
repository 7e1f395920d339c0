"""What the DynamoDB adapters store and how they read it: large values, expiry, batch limits, indexes (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from blackboard import AgentState, Completion, OrchestrationStatus, TaskState
from blackboard.adapters import MemoryCodeStore
from blackboard.adapters.aws import DynamoDBBlackboard, DynamoDBRegistry, PayloadTooLargeError, TransactionTooLargeError
from blackboard.adapters.aws import dynamodb_registry as registry_module
from blackboard.adapters.aws._dynamodb_items import INDEX_SHARDS, shard_of, shards
from blackboard.ports.registry import BUCKET_COUNT, StatsDelta
from blackboard.records import AgentStats, CodeRef
from tests.aws_support import InterceptingClient, MotoTables, moto_dynamodb
from tests.conformance.builders import manifest, ok, started, tasks_for, with_wave

pytestmark = pytest.mark.aws


@pytest.fixture
def tables() -> Iterator[MotoTables]:
    with moto_dynamodb() as created:
        yield created


def _item(tables: MotoTables, pk: str, sk: str) -> dict[str, Any]:
    found: dict[str, Any] = tables.client.get_item(TableName=tables.blackboard, Key={"pk": {"S": pk}, "sk": {"S": sk}})[
        "Item"
    ]
    return found


def _big(size: int) -> dict[str, Any]:
    return {"blob": "x" * size}


# ---------------------------------------------------------------- large values


class _CountingStore(MemoryCodeStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts = 0

    def put(self, data: bytes) -> CodeRef:
        self.puts += 1
        return super().put(data)


def test_large_values_go_to_the_payload_store_and_come_back(tables: MotoTables) -> None:
    payloads = _CountingStore()
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client, payloads=payloads, offload_bytes=4096)
    current = started(board)
    small = board.put_note(current.id, "small", {"n": 1}).record
    large = board.put_note(current.id, "large", _big(10_000)).record
    assert "S" in _item(tables, f"ORCH#{current.id}", "NOTE#small")["value"]
    reference = _item(tables, f"ORCH#{current.id}", "NOTE#large")["value"]["M"]
    assert payloads.exists(reference["sha256"]["S"]) and int(reference["bytes"]["N"]) > 10_000
    assert board.get_note(current.id, "large") == large and board.get_note(current.id, "small") == small
    # A task input larger than a whole DynamoDB item, and a conversation that grows past it.
    tasks = [t.model_copy(update={"input": _big(500_000)}) for t in tasks_for(current, 1)]
    orchestration = board.add_wave(current, tasks).record
    assert board.list_tasks(current.id)[0].input == tasks[0].input
    turns = [{"role": "user", "content": [{"text": "y" * 300_000}]}] * 3
    updated = board.update_orchestration(orchestration, conversation=turns)
    assert updated.applied and board.get_orchestration(current.id).conversation == turns
    # A completion (here by another process) rewrites the task without encoding or storing its input again.
    other = DynamoDBBlackboard(tables.blackboard, client=tables.client, payloads=payloads, offload_bytes=4096)
    puts = payloads.puts
    assert other.complete(current.id, tasks[0].task_id, 1, ok()).applied
    assert payloads.puts == puts and other.get_task(current.id, tasks[0].task_id).input == tasks[0].input


def test_without_a_payload_store_what_does_not_fit_is_refused_before_writing(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client)
    current = started(board)
    assert board.put_note(current.id, "fits", _big(100_000)).applied  # over the offload threshold, but it fits
    with pytest.raises(PayloadTooLargeError, match="payloads="):
        board.put_note(current.id, "too-big", _big(500_000))
    assert board.get_note(current.id, "too-big") is None
    with pytest.raises(PayloadTooLargeError):
        board.update_orchestration(current, output=_big(450_000))
    assert board.get_orchestration(current.id) == current
    # Every item fits, but not all of them in one 4 MB transaction.
    tasks = [t.model_copy(update={"input": _big(300_000)}) for t in tasks_for(current, 15)]
    with pytest.raises(PayloadTooLargeError, match="4,"):
        board.add_wave(current, tasks)
    assert board.list_tasks(current.id) == []


def test_a_wave_too_large_for_one_transaction_fits_with_a_payload_store(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client, payloads=MemoryCodeStore())
    current = started(board)
    tasks = [t.model_copy(update={"input": _big(300_000)}) for t in tasks_for(current, 15)]
    assert board.add_wave(current, tasks).applied
    assert [t.input for t in board.list_tasks(current.id)] == [t.input for t in tasks]


# ---------------------------------------------------------------- batches


def test_batches_beyond_one_transaction(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client)
    current = started(board)
    with pytest.raises(TransactionTooLargeError, match="a wave of 99 tasks needs 101 items"):
        board.add_wave(current, tasks_for(current, 99))
    assert board.list_tasks(current.id) == [] and board.get_orchestration(current.id) == current
    first, first_tasks = with_wave(board, 75)
    second, second_tasks = with_wave(board, 75)
    # Dispatch marks are independent of each other: 150 go in two transactions.
    assert all(t.applied for t in board.mark_dispatched([*first_tasks, *second_tasks]))
    assert {t.state for t in board.list_tasks(second.id)} == {TaskState.DISPATCHED}
    # Completions move wave counters: more than one transaction holds is refused, and nothing is written.
    completions = [Completion(first.id, t.task_id, 1, ok()) for t in first_tasks]
    completions += [Completion(second.id, t.task_id, 1, ok()) for t in second_tasks[:30]]
    with pytest.raises(TransactionTooLargeError):
        board.complete_many(completions)
    assert {t.state for t in board.list_tasks(first.id)} == {TaskState.DISPATCHED}
    results = board.complete_many(completions[:75])
    assert sum(r.closes_wave for r in results) == 1 and results[-1].closes_wave


# ---------------------------------------------------------------- expiry


def test_a_finished_orchestration_expires_with_all_its_items(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client, ttl_days=7)
    orchestration, tasks = with_wave(board, 2)
    board.put_note(orchestration.id, "k", 1)
    board.complete(orchestration.id, tasks[0].task_id, 1, ok())
    partition = f"ORCH#{orchestration.id}"
    assert "expires_at" not in _item(tables, partition, "ORCH")
    finished = board.update_orchestration(orchestration, status=OrchestrationStatus.COMPLETED, output="done").record
    expected = int((finished.updated_at + timedelta(days=7)).timestamp())
    keys = [
        (partition, "ORCH"),
        (partition, f"TASK#{tasks[0].task_id}"),
        (partition, f"TASK#{tasks[1].task_id}"),
        (partition, "WAVE#000001"),
        (partition, "NOTE#k"),
        (f"EVENT#{orchestration.event.id}", "EVENT"),
    ]
    assert [int(_item(tables, *key)["expires_at"]["N"]) for key in keys] == [expected] * len(keys)
    # A late change of a task or a note keeps the expiry.
    assert board.cancel(orchestration.id, tasks[1].task_id, "orchestration finished").applied
    assert board.put_note(orchestration.id, "k", 2, expected_version=1).applied
    assert int(_item(tables, partition, f"TASK#{tasks[1].task_id}")["expires_at"]["N"]) == expected
    assert int(_item(tables, partition, "NOTE#k")["expires_at"]["N"]) == expected


def test_a_finish_is_one_query_and_one_transaction_with_the_expiry(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    board = DynamoDBBlackboard(tables.blackboard, client=client, ttl_days=7)
    orchestration, _ = with_wave(board, 2)
    client.calls.clear()
    sent: list[dict[str, Any]] = []
    client.hooks["transact_write_items"] = lambda real, kwargs: sent.append(kwargs) or real(**kwargs)
    assert board.update_orchestration(orchestration, status=OrchestrationStatus.COMPLETED, output="done").applied
    assert client.calls == ["query", "transact_write_items"]
    (request,) = sent
    assert len(request["TransactItems"]) == 1 + 4  # the orchestration, its event marker, 2 tasks, the wave counter
    assert request["ClientRequestToken"]  # botocore's retry after a lost response is answered as applied


def test_a_stale_finish_writes_nothing(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client, ttl_days=7)
    orchestration, tasks = with_wave(board, 1)
    moved = board.update_orchestration(orchestration, output="moved on").record
    stale = board.update_orchestration(orchestration, status=OrchestrationStatus.COMPLETED, output="done")
    assert not stale.applied and stale.record == moved
    partition = f"ORCH#{orchestration.id}"
    assert "expires_at" not in _item(tables, partition, "ORCH")
    assert "expires_at" not in _item(tables, partition, f"TASK#{tasks[0].task_id}")


def test_the_items_past_the_finishing_transaction_get_their_expiry_after_it(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    board = DynamoDBBlackboard(tables.blackboard, client=client, ttl_days=7)
    orchestration, tasks = with_wave(board, 98)  # 100 other items: the event marker, 98 tasks, the wave counter
    client.calls.clear()
    finished = board.update_orchestration(orchestration, status=OrchestrationStatus.FAILED, error="x").record
    assert client.calls == ["query", "transact_write_items", "transact_write_items"]
    expected = int((finished.updated_at + timedelta(days=7)).timestamp())
    partition = f"ORCH#{orchestration.id}"
    for sort_key in ("ORCH", "WAVE#000001", *(f"TASK#{t.task_id}" for t in tasks)):
        assert int(_item(tables, partition, sort_key)["expires_at"]["N"]) == expected


def _closed_wave(board: DynamoDBBlackboard) -> Any:
    orchestration, tasks = with_wave(board, 2)
    board.put_note(orchestration.id, "k", 1)
    for task in tasks:
        board.complete(orchestration.id, task.task_id, 1, ok())
    return board.get_orchestration(orchestration.id)


def test_a_finish_after_reading_the_wave_takes_the_keys_it_read(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    board = DynamoDBBlackboard(tables.blackboard, client=client, ttl_days=7)
    orchestration = _closed_wave(board)
    view = board.read_wave(orchestration.id)
    # The coordinator's own writes since (the results with the lease, a renewal) create no item.
    moved = board.update_orchestration(view.orchestration, output="results").record
    moved = board.update_orchestration(moved, error=None).record
    client.calls.clear()
    finished = board.update_orchestration(moved, status=OrchestrationStatus.COMPLETED, output="done").record
    assert client.calls == ["transact_write_items"]  # no Query of the keys
    expected = int((finished.updated_at + timedelta(days=7)).timestamp())
    partition = f"ORCH#{orchestration.id}"
    items = tables.client.query(
        TableName=tables.blackboard,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": partition}},
    )["Items"]
    assert len(items) == 5 and {int(i["expires_at"]["N"]) for i in items} == {expected}
    assert int(_item(tables, f"EVENT#{orchestration.event.id}", "EVENT")["expires_at"]["N"]) == expected


def test_a_finish_lists_the_keys_again_after_a_new_item_or_a_write_from_elsewhere(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    board = DynamoDBBlackboard(tables.blackboard, client=client, ttl_days=7)
    elsewhere = DynamoDBBlackboard(tables.blackboard, client=tables.client, ttl_days=7)
    orchestration = _closed_wave(board)
    view = board.read_wave(orchestration.id)
    board.put_note(orchestration.id, "new", 2)  # a new item in the partition, written here
    client.calls.clear()
    board.update_orchestration(view.orchestration, status=OrchestrationStatus.FAILED, error="x")
    assert client.calls == ["query", "transact_write_items"]
    assert "expires_at" in _item(tables, f"ORCH#{orchestration.id}", "NOTE#new")

    other = _closed_wave(board)
    view = board.read_wave(other.id)
    moved = elsewhere.update_orchestration(view.orchestration, output="moved elsewhere").record
    elsewhere.put_note(other.id, "theirs", 3)
    client.calls.clear()
    board.update_orchestration(moved, status=OrchestrationStatus.FAILED, error="x")
    assert client.calls == ["query", "transact_write_items"]  # the version it read is not the one it finishes
    assert "expires_at" in _item(tables, f"ORCH#{other.id}", "NOTE#theirs")


def test_no_expiry_when_disabled(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client, ttl_days=None)
    orchestration, tasks = with_wave(board, 1)
    board.update_orchestration(orchestration, status=OrchestrationStatus.FAILED, error="x")
    assert "expires_at" not in _item(tables, f"ORCH#{orchestration.id}", "ORCH")
    assert "expires_at" not in _item(tables, f"ORCH#{orchestration.id}", f"TASK#{tasks[0].task_id}")


# ---------------------------------------------------------------- reads: keys and indexes, never a scan


def test_every_read_is_a_key_lookup_or_a_query(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    queries: list[str] = []

    partitions: list[tuple[str, str]] = []

    def record(real: Any, kwargs: dict[str, Any]) -> Any:
        queries.append(kwargs.get("IndexName", "table"))
        if "IndexName" in kwargs:
            partitions.append((kwargs["IndexName"], kwargs["ExpressionAttributeValues"][":p"]["S"]))
        return real(**kwargs)

    client.hooks["query"] = record
    board = DynamoDBBlackboard(tables.blackboard, client=client, payloads=MemoryCodeStore())
    registry = DynamoDBRegistry(tables.registry, client=client)
    orchestration, tasks = with_wave(board, 3)
    board.mark_dispatched(tasks)
    board.claim_many(tasks)
    board.complete(orchestration.id, tasks[0].task_id, 1, ok())
    board.put_note(orchestration.id, "k", 1)
    board.notes(orchestration.id)
    board.find_orchestration(orchestration.event.id)
    board.list_orchestrations(OrchestrationStatus.RUNNING)
    partitions.clear()
    board.list_orchestrations()
    board.find_tasks([TaskState.RUNNING], deadline_before=orchestration.created_at + timedelta(days=1))
    board.find_tasks([TaskState.FAILED], retry_before=orchestration.created_at)
    board.find_tasks([TaskState.PENDING, TaskState.RUNNING], updated_before=orchestration.created_at)
    # Every shard of each partition, and the partition's unsharded key (entries written before sharding).
    assert partitions == [
        *(("gsi1", p) for status in OrchestrationStatus for p in shards(f"ORCHS#{status.value}")),
        *(("gsi2", p) for p in shards("TASKDUE#deadline")),
        *(("gsi2", p) for p in shards("TASKDUE#retry")),
        *(("gsi1", p) for state in ("pending", "running") for p in shards(f"TASKS#{state}")),
    ]
    registry.put(manifest())
    registry.active("burger_cook")
    queries.clear()
    assert list(registry.active_agents()) == ["burger_cook"]
    assert queries == ["gsi2"]
    assert not {c for c in client.calls if "scan" in c or "statement" in c}
    assert set(client.calls) <= {
        "get_item",
        "batch_get_item",
        "query",
        "put_item",
        "update_item",
        "transact_write_items",
    }


def _index_keys(tables: MotoTables) -> list[tuple[str, str]]:
    """Every (gsi1pk, gsi2pk) of the blackboard's task and orchestration items."""
    items = tables.client.scan(TableName=tables.blackboard)["Items"]  # the test looks; the adapter never scans
    return [(i.get("gsi1pk", {}).get("S", ""), i.get("gsi2pk", {}).get("S", "")) for i in items if "gsi1pk" in i]


def test_index_partition_keys_are_write_sharded(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client)
    orchestration = started(board)
    tasks = tasks_for(orchestration, 40)
    tasks = [t.model_copy(update={"deadline": orchestration.created_at + timedelta(hours=1)}) for t in tasks]
    board.add_wave(orchestration, tasks)
    board.mark_dispatched(tasks)
    keys = _index_keys(tables)
    pending = {gsi1 for gsi1, _ in keys if gsi1.startswith("TASKS#")}
    assert pending <= set(shards("TASKS#dispatched")[:INDEX_SHARDS]) and len(pending) > INDEX_SHARDS // 2
    due = {gsi2 for _, gsi2 in keys if gsi2}
    assert due <= set(shards("TASKDUE#deadline")[:INDEX_SHARDS]) and len(due) > INDEX_SHARDS // 2
    # A task keeps its shard through its transitions; readers merge the shards back into one order.
    for task in tasks:
        assert f"TASKS#dispatched#{shard_of(orchestration.id, task.task_id)}" in pending
    found = board.find_tasks([TaskState.DISPATCHED], deadline_before=orchestration.created_at + timedelta(days=1))
    assert sorted(t.task_id for t in found) == sorted(t.task_id for t in tasks)
    assert len(board.find_tasks([TaskState.DISPATCHED], limit=7)) == 7


def test_items_written_with_the_unsharded_keys_are_still_found(tables: MotoTables) -> None:
    board = DynamoDBBlackboard(tables.blackboard, client=tables.client)
    older, newer = started(board), started(board)
    orchestration, tasks = with_wave(board, 2)
    # What an earlier release wrote: one partition per state, all orchestrations also under ORCHS in gsi2.
    for key, gsi1pk in (
        (f"ORCH#{older.id}", "ORCHS#running"),
        (f"ORCH#{orchestration.id}", "ORCHS#running"),
    ):
        tables.client.update_item(
            TableName=tables.blackboard,
            Key={"pk": {"S": key}, "sk": {"S": "ORCH"}},
            UpdateExpression="SET gsi1pk = :p, gsi2pk = :all",
            ExpressionAttributeValues={":p": {"S": gsi1pk}, ":all": {"S": "ORCHS"}},
        )
    tables.client.update_item(
        TableName=tables.blackboard,
        Key={"pk": {"S": f"ORCH#{orchestration.id}"}, "sk": {"S": f"TASK#{tasks[0].task_id}"}},
        UpdateExpression="SET gsi1pk = :p",
        ExpressionAttributeValues={":p": {"S": "TASKS#pending"}},
    )
    listed = [o.id for o in board.list_orchestrations(OrchestrationStatus.RUNNING)]
    assert listed == [orchestration.id, newer.id, older.id]
    assert [o.id for o in board.list_orchestrations(limit=2)] == [orchestration.id, newer.id]
    assert sorted(t.task_id for t in board.find_tasks([TaskState.PENDING])) == sorted(t.task_id for t in tasks)
    # The next write moves an item to its shard.
    board.mark_dispatched(tasks[:1])
    assert f"TASKS#dispatched#{shard_of(orchestration.id, tasks[0].task_id)}" in {k for k, _ in _index_keys(tables)}


def test_registry_listing_follows_last_evaluated_key(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    registry = DynamoDBRegistry(tables.registry, client=client)
    names = [f"agent_{i:02d}" for i in range(12)]
    for name in reversed(names):
        registry.put(manifest(name=name, code=name.encode()))
    registry.set_state("agent_03", 1, AgentState.ACTIVE, AgentState.QUARANTINED)
    pages: list[int] = []

    def small_pages(real: Any, kwargs: dict[str, Any]) -> Any:
        response = real(**{**kwargs, "Limit": min(kwargs.get("Limit", 2), 2)})  # DynamoDB may stop a page early
        pages.append(len(response["Items"]))
        return response

    client.hooks["query"] = small_pages
    assert [m.name for m in registry.list_agents(page_size=5)] == names
    assert len(pages) > 12 // 5 + 1  # more DynamoDB pages than listing pages: LastEvaluatedKey was followed
    assert sorted(registry.active_agents()) == [n for n in names if n != "agent_03"]


# ---------------------------------------------------------------- stats


def test_stats_are_added_as_decimals(tables: MotoTables) -> None:
    registry = DynamoDBRegistry(tables.registry, client=tables.client)
    registry.put(manifest())
    registry.add_stats("burger_cook", 1, StatsDelta(invocations=1, succeeded=1, total_ms=0.1, tokens=3))
    registry.add_stats("burger_cook", 1, StatsDelta(invocations=1, failed=1, total_ms=0.2))
    stats = registry.get("burger_cook", 1).stats
    assert stats == AgentStats(invocations=2, succeeded=1, failed=1, total_ms=0.3, tokens=3)  # not 0.30000000000000004
    key = {"pk": {"S": "AGENT#burger_cook"}, "sk": {"S": "V#00000001"}}
    manifest_item = tables.client.get_item(TableName=tables.registry, Key=key)["Item"]
    assert not [name for name in manifest_item if name.startswith("stats_")]  # the manifest item never changes


def test_duration_buckets_map_to_numbered_attributes(tables: MotoTables) -> None:
    registry = DynamoDBRegistry(tables.registry, client=tables.client)
    registry.put(manifest())
    registry.add_stats("burger_cook", 1, StatsDelta.of(TaskState.SUCCEEDED, 0.5, 1))  # bucket 0 (<= 1 ms)
    registry.add_stats(
        "burger_cook", 1, StatsDelta.of(TaskState.FAILED, 3.0, 1) + StatsDelta.of(TaskState.FAILED, 3.5, 1)
    )
    registry.add_stats("burger_cook", 1, StatsDelta.of(TaskState.SUCCEEDED, 12.0, 1))  # bucket 4 (<= 16 ms)
    key = {"pk": {"S": "AGENT#burger_cook"}, "sk": {"S": "V#00000001#STATS"}}
    item = tables.client.get_item(TableName=tables.registry, Key=key)["Item"]
    assert sorted(name for name in item if name.startswith("stats_d")) == ["stats_d0", "stats_d2", "stats_d4"]
    stats = registry.get("burger_cook", 1).stats
    expected = [0] * BUCKET_COUNT
    expected[0], expected[2], expected[4] = 1, 2, 1
    assert stats.invocations == 4 and list(stats.duration_buckets) == expected
    assert list(registry_module._stats({}).duration_buckets) == [0] * BUCKET_COUNT
