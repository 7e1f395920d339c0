"""The DynamoDB adapters under faults: throttling, lost responses, stale writers, transaction conflicts (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from blackboard import Completion, StoreUnavailableError, TaskState
from blackboard.adapters.aws import ContentionError, DynamoDBBlackboard, DynamoDBRegistry
from blackboard.adapters.aws import _retries as retries_module
from tests.aws_support import InterceptingClient, MotoTables, dynamodb_client, moto_dynamodb
from tests.conformance.builders import manifest, ok, with_wave

pytestmark = pytest.mark.aws


@pytest.fixture
def tables() -> Iterator[MotoTables]:
    with moto_dynamodb() as created:
        yield created


# ---------------------------------------------------------------- throttling: botocore retries, then a clear error


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@dataclass
class Throttle:
    """Answers the next ``left`` requests of ``operation`` with a throttling error ``code``."""

    operation: str
    code: str
    left: int = 0
    seen: int = 0


def _throttled_client(throttle: Throttle) -> Any:
    """A moto client whose requests go through ``throttle`` first.

    The error comes back as an HTTP response, so botocore's own retry logic handles it. moto's request handler is
    taken off this client and called from ours, so that a throttled request never reaches moto.
    """
    from moto.core.models import botocore_stubber

    client = dynamodb_client(max_attempts=3)
    client.meta.events.unregister("before-send", botocore_stubber)

    def handler(request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        if event_name.endswith(f".{throttle.operation}"):
            throttle.seen += 1
            if throttle.left > 0:
                throttle.left -= 1
                body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{throttle.code}", "message": "slow"})
                return AWSResponse(request.url, 400, {"x-amzn-RequestId": "test"}, _Body(body.encode()))
        response: AWSResponse | None = botocore_stubber(event_name, request, **kwargs)
        return response

    client.meta.events.register("before-send", handler)
    return client


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_throttling_is_retried_by_botocore_then_reported_clearly(
    tables: MotoTables, code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("botocore.endpoint.time.sleep", sleeps.append)  # botocore's backoff, without the wait
    throttle = Throttle("GetItem", code, left=99)
    board = DynamoDBBlackboard(tables.blackboard, client=_throttled_client(throttle))
    with pytest.raises(StoreUnavailableError) as raised:
        board.get_orchestration("any")
    assert raised.value.retryable
    assert code in str(raised.value) and "3 attempt(s)" in str(raised.value)
    assert throttle.seen == 3 and len(sleeps) == 2  # three attempts, two backoffs


def test_throttling_that_passes_is_invisible(tables: MotoTables, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None)
    throttle = Throttle("TransactWriteItems", "ProvisionedThroughputExceededException")
    board = DynamoDBBlackboard(tables.blackboard, client=_throttled_client(throttle))
    orchestration, tasks = with_wave(board, 1)
    throttle.left, throttle.seen = 2, 0
    done = board.complete(orchestration.id, tasks[0].task_id, 1, ok())
    assert done.applied and done.closes_wave
    assert throttle.seen == 3
    assert board.get_task(orchestration.id, tasks[0].task_id).state is TaskState.SUCCEEDED


# ---------------------------------------------------------------- conditional checks: "not applied", never twice


def _lost_response(real: Any, kwargs: dict[str, Any]) -> Any:
    """DynamoDB applied the write but the response was lost: botocore sends it again, and that one is answered."""
    real(**kwargs)
    return real(**kwargs)


def test_a_write_retried_after_a_lost_response_counts_once(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    board = DynamoDBBlackboard(tables.blackboard, client=client)
    orchestration, tasks = with_wave(board, 2)
    client.hooks["put_item"] = client.hooks["update_item"] = _lost_response
    claimed = board.claim(orchestration.id, tasks[0].task_id, 1)
    assert claimed.applied and claimed.task.state is TaskState.RUNNING  # our own write, not a competitor's
    assert not board.claim(orchestration.id, tasks[0].task_id, 1).applied
    note = board.put_note(orchestration.id, "k", 1)
    assert note.applied
    assert board.put_note(orchestration.id, "k", 2, expected_version=1).applied  # an update, also retried
    assert board.get_note(orchestration.id, "k").value == 2  # type: ignore[union-attr]


def test_transactions_retried_after_a_lost_response_count_once(dynamodb_local: str, tmp_path: Any) -> None:
    # On DynamoDB Local (moto ignores ClientRequestToken): each transaction is sent again with its token, as botocore
    # does after a lost response, and answered as applied instead of failing on its own writes.
    from blackboard import OrchestrationStatus
    from tests.aws_support import create_tables, delete_tables

    client = InterceptingClient(dynamodb_client(dynamodb_local))
    names = (f"bb-finish-{tmp_path.name}"[:200], f"reg-finish-{tmp_path.name}"[:200])
    create_tables(client, *names)
    try:
        board = DynamoDBBlackboard(names[0], client=client, ttl_days=7)
        client.hooks["transact_write_items"] = _lost_response
        orchestration, tasks = with_wave(board, 2)  # the wave and the orchestration, in one transaction
        assert [t.task_id for t in board.list_tasks(orchestration.id)] == [t.task_id for t in tasks]
        finished = board.update_orchestration(orchestration, status=OrchestrationStatus.COMPLETED, output="done")
        assert finished.applied and board.get_orchestration(orchestration.id).output == "done"
    finally:
        delete_tables(client, *names)


def test_a_stale_writer_is_not_applied_and_the_wave_closes_once(tables: MotoTables) -> None:
    first_client = InterceptingClient(tables.client)
    first = DynamoDBBlackboard(tables.blackboard, client=first_client)
    second = DynamoDBBlackboard(tables.blackboard, client=tables.client)
    orchestration, tasks = with_wave(first, 1)
    task_id = tasks[0].task_id
    outcomes = []

    def overtaken(real: Any, kwargs: dict[str, Any]) -> Any:
        # The first board wrote the task last (add_wave), so it does not read it; the second completes it first.
        del first_client.hooks["transact_write_items"]
        outcomes.append(second.complete(orchestration.id, task_id, 1, ok("second")))
        return real(**kwargs)

    first_client.hooks["transact_write_items"] = overtaken
    late = first.complete(orchestration.id, task_id, 1, ok("first"))
    assert outcomes[0].applied and outcomes[0].closes_wave
    assert not late.applied and not late.closes_wave
    assert first_client.calls.count("get_item") == 1  # no read first; one after the failed condition
    stored = first.get_task(orchestration.id, task_id)
    assert stored.result is not None and stored.result.output == "second"


# ---------------------------------------------------------------- transaction conflicts: tenacity retries


def _cancelled(*reasons: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": r} for r in reasons],
        },
        "TransactWriteItems",
    )


def test_a_transaction_conflict_is_retried(tables: MotoTables) -> None:
    client = InterceptingClient(tables.client)
    board = DynamoDBBlackboard(tables.blackboard, client=client)
    registry = DynamoDBRegistry(tables.registry, client=client)
    orchestration, tasks = with_wave(board, 2)
    conflicts = [_cancelled("None", "TransactionConflict"), _cancelled("TransactionConflict", "None")]

    def conflict_twice(real: Any, kwargs: dict[str, Any]) -> Any:
        if conflicts:
            raise conflicts.pop()
        return real(**kwargs)

    client.hooks["transact_write_items"] = conflict_twice
    client.calls.clear()
    results = board.complete_many([Completion(orchestration.id, t.task_id, 1, ok()) for t in tasks])
    assert [(r.applied, r.closes_wave) for r in results] == [(True, False), (True, True)]
    assert client.calls.count("transact_write_items") == 3
    conflicts.extend([_cancelled("TransactionConflict", "None", "None")])
    assert registry.put(manifest()).applied
    assert registry.revision() == 1


def test_endless_conflicts_end_in_a_retryable_error(tables: MotoTables, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retries_module, "CONFLICT_ATTEMPTS", 3)
    client = InterceptingClient(tables.client)
    board = DynamoDBBlackboard(tables.blackboard, client=client)
    orchestration, tasks = with_wave(board, 1)

    def always(real: Any, kwargs: dict[str, Any]) -> Any:
        raise _cancelled("TransactionConflict", "None")

    client.hooks["transact_write_items"] = always
    client.calls.clear()
    with pytest.raises(ContentionError) as raised:
        board.complete(orchestration.id, tasks[0].task_id, 1, ok())
    assert raised.value.retryable
    assert client.calls.count("transact_write_items") == 3
    assert board.get_task(orchestration.id, tasks[0].task_id).state is TaskState.PENDING


def test_a_missing_table_is_a_configuration_error(tables: MotoTables) -> None:
    from blackboard import ConfigurationError

    board = DynamoDBBlackboard("no-such-table", client=tables.client)
    with pytest.raises(ConfigurationError, match=r"no-such-table.*ResourceNotFoundException"):
        board.get_orchestration("x")
