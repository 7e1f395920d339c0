"""Calls per task change on DynamoDB: a claim in one UpdateItem, a change of a task this process wrote last without a
read; both exactly as the port's change functions say (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from blackboard import TaskNotFoundError, TaskState
from blackboard.adapters.aws import DynamoDBBlackboard
from blackboard.adapters.aws._dynamodb_items import task_key as board_key
from blackboard.adapters.aws._dynamodb_seen import SeenItems, WaveTally
from blackboard.ports.blackboard import TaskChange
from blackboard.records import Task
from tests.aws_support import InterceptingClient, MotoTables, moto_dynamodb
from tests.conformance.builders import failed, ok, with_wave

pytestmark = pytest.mark.aws

NOW = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def tables() -> Iterator[MotoTables]:
    with moto_dynamodb() as created:
        yield created


def _board(
    tables: MotoTables, cls: type[DynamoDBBlackboard] = DynamoDBBlackboard
) -> tuple[DynamoDBBlackboard, InterceptingClient]:
    client = InterceptingClient(tables.client)
    return cls(tables.blackboard, client=client, clock=lambda: NOW), client


def test_claim_and_complete_take_one_call_each_and_store_what_the_port_says(tables: MotoTables) -> None:
    board, client = _board(tables)
    orchestration, tasks = with_wave(board, 2)
    board.mark_dispatched(tasks)
    first, last = (t.task_id for t in tasks)
    before = board.get_task(orchestration.id, first)
    client.calls.clear()
    claimed = board.claim(orchestration.id, first, 1)
    assert client.calls == ["update_item"]
    assert claimed.applied
    assert claimed.task == before.model_copy(update={"state": TaskState.RUNNING, "updated_at": NOW})
    assert board.get_task(orchestration.id, first) == claimed.task
    client.calls.clear()
    completed = board.complete(orchestration.id, first, 1, ok("a"))
    assert client.calls == ["transact_write_items"]  # the task and its wave counter, no read
    assert completed.applied and not completed.closes_wave
    assert board.get_task(orchestration.id, first) == completed.task
    board.claim(orchestration.id, last, 1)
    client.calls.clear()
    closing = board.complete(orchestration.id, last, 1, ok("b"))
    assert client.calls == ["transact_write_items"]  # the closing form: this process made the rest of the wave done
    assert closing.closes_wave


def test_a_wave_another_process_finished_part_of_closes_on_the_second_form(tables: MotoTables) -> None:
    board, client = _board(tables)
    other, _ = _board(tables)  # another process's adapter: it knows nothing of this one's completions
    orchestration, tasks = with_wave(board, 3)
    board.mark_dispatched(tasks)
    first, second, last = (t.task_id for t in tasks)
    for task_id in (first, second, last):
        board.claim(orchestration.id, task_id, 1)
    assert not board.complete(orchestration.id, first, 1, ok("a")).closes_wave
    assert not other.complete(orchestration.id, second, 1, ok("b")).closes_wave
    client.calls.clear()
    closing = board.complete(orchestration.id, last, 1, ok("c"))
    assert client.calls == ["transact_write_items"] * 2  # guessed the counter's open form first: one done elsewhere
    assert closing.closes_wave
    assert not other.complete(orchestration.id, last, 1, ok("late")).applied  # and it closed once


def test_waves_tallied_are_bounded_and_by_size() -> None:
    tally = WaveTally(max_waves=2)
    tally.add(("o", 1), 3, 1)
    tally.add(("o", 1), 3, 1)
    assert tally.done(("o", 1), 3) == 2
    assert tally.done(("o", 1), 4) == 0  # the wave grew since: nothing known at that size
    tally.add(("o", 2), 2, 1)
    tally.add(("o", 3), 2, 1)  # the least recently moved goes
    assert tally.done(("o", 1), 3) == 0 and tally.done(("o", 3), 2) == 1
    tally.forget(("o", 3))
    assert tally.done(("o", 3), 2) == 0


def test_a_claim_with_a_lease_is_one_update_and_a_renewal_is_conditional(tables: MotoTables) -> None:
    board, client = _board(tables)
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    before = board.get_task(orchestration.id, task_id)
    client.calls.clear()
    claimed = board.claim(orchestration.id, task_id, 1, holder="h/1/2", lease_seconds=10)
    assert client.calls == ["update_item"]
    expected = {
        "state": TaskState.RUNNING,
        "updated_at": NOW,
        "holder": "h/1/2",
        "lease_expires_at": NOW + timedelta(seconds=10),
    }
    assert claimed.applied and claimed.task == before.model_copy(update=expected)
    assert board.get_task(orchestration.id, task_id) == claimed.task
    assert not board.renew_lease(orchestration.id, task_id, 1, "h/1/3", 20).applied
    assert board.renew_lease(orchestration.id, task_id, 1, "h/1/2", 20).applied
    assert board.get_task(orchestration.id, task_id).lease_expires_at == NOW + timedelta(seconds=20)
    board.complete(orchestration.id, task_id, 1, ok())
    item = tables.client.get_item(TableName=tables.blackboard, Key=board_key(orchestration.id, task_id))["Item"]
    assert "holder" not in item and "lease_expires_at" not in item  # a finished attempt holds no lease


def test_a_claim_that_does_not_apply_costs_one_call(tables: MotoTables) -> None:
    board, client = _board(tables)
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    assert board.claim(orchestration.id, task_id, 1).applied
    client.calls.clear()
    again = board.claim(orchestration.id, task_id, 1)
    stale = board.claim(orchestration.id, task_id, 2)
    assert client.calls == ["update_item", "update_item"]  # the stored task comes back with the failed condition
    assert not again.applied and not stale.applied
    assert again.task == stale.task == board.get_task(orchestration.id, task_id)
    with pytest.raises(TaskNotFoundError):
        board.claim(orchestration.id, "w1-missing", 1)


def test_a_remembered_task_that_does_not_take_a_change_is_read_again(tables: MotoTables) -> None:
    first, _ = _board(tables)
    second, _ = _board(tables)
    orchestration, tasks = with_wave(first, 1)  # the first board remembers the task pending at attempt 1
    task_id = tasks[0].task_id
    second.claim(orchestration.id, task_id, 1)
    second.complete(orchestration.id, task_id, 1, failed(), retry_at=NOW)
    assert second.retry(orchestration.id, task_id, 1).task.attempt == 2
    # A result of attempt 2 does not apply to the remembered task (attempt 1); the stored one (pending) takes it.
    done = first.complete(orchestration.id, task_id, 2, ok())
    assert done.applied and done.closes_wave


def test_items_written_before_state_left_the_document_still_read_and_claim(tables: MotoTables) -> None:
    board, _ = _board(tables)
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    stored = board.get_task(orchestration.id, task_id)
    key = {"pk": {"S": f"ORCH#{orchestration.id}"}, "sk": {"S": f"TASK#{task_id}"}}
    item = tables.client.get_item(TableName=tables.blackboard, Key=key)["Item"]
    document = json.loads(item["doc"]["S"])
    assert "state" not in document and "updated_at" not in document
    document.update(stored.model_dump(mode="json", include={"state", "updated_at"}))
    del item["updated_at"]
    tables.client.put_item(TableName=tables.blackboard, Item={**item, "doc": {"S": json.dumps(document)}})
    fresh, _ = _board(tables)
    assert fresh.get_task(orchestration.id, task_id) == stored
    claimed = fresh.claim(orchestration.id, task_id, 1)
    assert claimed.applied and fresh.get_task(orchestration.id, task_id) == claimed.task
    assert claimed.task == stored.model_copy(update={"state": TaskState.RUNNING, "updated_at": NOW})


class _WiderClaim(DynamoDBBlackboard):
    """A claim whose change depends on more than the fast path sees: it must still end as the port says."""

    def _claim(self, attempt: int, holder: str | None = None, lease_seconds: float | None = None) -> TaskChange:
        base = super()._claim(attempt, holder, lease_seconds)

        def change(task: Task) -> Task | None:
            changed = base(task)
            if changed is None or not task.input:
                return changed
            return changed.model_copy(update={"max_attempts": task.max_attempts + 1})

        return change


def test_a_claim_the_update_cannot_express_is_put_right(tables: MotoTables) -> None:
    board, client = _board(tables, _WiderClaim)
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    client.calls.clear()
    claimed = board.claim(orchestration.id, task_id, 1)
    assert client.calls == ["update_item", "put_item"]
    assert claimed.applied and claimed.task.max_attempts == tasks[0].max_attempts + 1
    assert board.get_task(orchestration.id, task_id) == claimed.task


def test_remembered_items_are_bounded() -> None:
    def item(task_id: str, size: int = 10) -> dict[str, dict[str, str]]:
        return {"pk": {"S": "ORCH#o"}, "sk": {"S": f"TASK#{task_id}"}, "doc": {"S": "x" * size}}

    seen = SeenItems(max_items=2, max_bytes=1000)
    seen.remember([item("a"), item("b"), item("c"), item("huge", 5000)])
    assert seen.get([("o", "a")]) is None and seen.get([("o", "huge")]) is None
    assert seen.get([("o", "b"), ("o", "c")]) == {("o", "b"): item("b"), ("o", "c"): item("c")}
    seen.forget([("o", "b")])
    assert seen.get([("o", "b"), ("o", "c")]) is None


def test_reading_a_wave_is_one_query_of_the_orchestrations_partition(tables: MotoTables) -> None:
    board, client = _board(tables)
    orchestration, tasks = with_wave(board, 3)
    for task in tasks:
        board.complete(orchestration.id, task.task_id, 1, ok(task.task_id))
    board.put_note(orchestration.id, "inventory", {"buns": 2})
    client.calls.clear()
    view = board.read_wave(orchestration.id, tasks[2].task_id)
    assert client.calls == ["query"]
    assert view.orchestration == board.get_orchestration(orchestration.id)
    assert view.tasks == board.list_tasks(orchestration.id, wave=1)
    assert view.task == view.tasks[2] and view.task.state is TaskState.SUCCEEDED
    assert [n.value for n in view.notes] == [{"buns": 2}]
