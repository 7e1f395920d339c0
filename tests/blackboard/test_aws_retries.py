"""The AWS adapters retry one way: tenacity with jittered exponential backoff, on top of botocore's own retries."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

import blackboard.adapters.aws
from blackboard import StoreUnavailableError
from blackboard.adapters.aws._batches import Refused, send_batches
from blackboard.adapters.aws._dynamodb import BATCH_GET_ATTEMPTS, Table


class FakeThrottlingDynamoDB:
    """A fake DynamoDB client: BatchGetItem returns one key per call and leaves the others unprocessed."""

    def __init__(self) -> None:
        self.calls = 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        ((table, request),) = RequestItems.items()
        first, *rest = request["Keys"]
        unprocessed = {table: {**request, "Keys": rest}} if rest else {}
        return {"Responses": {table: [first]}, "UnprocessedKeys": unprocessed}


def _keys(n: int) -> list[dict[str, Any]]:
    return [{"pk": {"S": f"k{i}"}} for i in range(n)]


def test_unprocessed_keys_are_read_again_after_jittered_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    random.seed(7)
    for _ in range(10):
        client = FakeThrottlingDynamoDB()
        assert Table(client, "t").batch_get(_keys(3)) == _keys(3)
        assert client.calls == 3
    first_waits = waits[::2]
    assert len(waits) == 20 and all(0 <= w <= 0.02 for w in first_waits) and all(0 <= w <= 0.04 for w in waits)
    assert len(set(first_waits)) > 1  # jittered: clients throttled together do not come back together


def test_keys_that_stay_unprocessed_end_in_a_retryable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    client = FakeThrottlingDynamoDB()
    with pytest.raises(StoreUnavailableError, match="reads stayed throttled") as raised:
        Table(client, "t").batch_get(_keys(BATCH_GET_ATTEMPTS + 1))
    assert raised.value.retryable and client.calls == BATCH_GET_ATTEMPTS


def test_refused_batch_entries_are_sent_again_after_jittered_waits() -> None:
    waits: list[float] = []
    sent: list[list[str]] = []

    def call(entries: list[str]) -> Refused:
        sent.append(entries)
        return {e: ("Throttled", "slow down", True) for e in entries[1:]}  # only the first one goes through

    random.seed(3)
    accepted = send_batches("Op", [["a", "b", "c"]], str, call, attempts=5, base_seconds=0.1, sleep=waits.append)
    assert accepted == ["a", "b", "c"] and sent == [["a", "b", "c"], ["b", "c"], ["c"]]
    assert len(waits) == 2 and 0 <= waits[0] <= 0.1 and 0 <= waits[1] <= 0.2 and waits[0] != 0.05


def test_only_the_retry_module_retries() -> None:
    package = Path(blackboard.adapters.aws.__file__).parent
    retrying = sorted(
        path.name
        for path in package.glob("*.py")
        if any(word in path.read_text() for word in ("import tenacity", "from tenacity", "RetryPolicy"))
    )
    assert retrying == ["_retries.py"]
