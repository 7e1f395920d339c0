"""The ingress Lambda's edge: the strict JSON boundary, reserved sources, and replays with other content."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

import arbiter.aws_lambda
from arbiter.inputs import load_event_file
from blackboard import Backends
from tests.aws.conftest import EXAMPLES, register_example
from tests.aws.deployment import FakeLambdaContext, MotoDeployment

pytestmark = pytest.mark.aws


def delivered(source: str = "meal.request", detail: Any = None, event_id: str = "e-1") -> dict[str, Any]:
    """An event as EventBridge hands it to the function."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Order Placed",
        "source": source,
        "account": "123456789012",
        "time": datetime.now(UTC).isoformat(),
        "region": "eu-west-1",
        "resources": [],
        "detail": {"table": 7} if detail is None else detail,
    }


@pytest.mark.parametrize(
    ("event", "words"),
    [
        (delivered("arbiter"), "reserved"),
        (delivered("arbiter.reflection"), "reserved"),
        (delivered(detail={"v": json.loads("[" * 100 + "]" * 100)}), "nests deeper than 64"),
        (delivered(detail={"v": float("nan")}), "NaN"),
        (delivered(detail={"v": 10**40}), "outside the range"),
        (delivered(detail={"v": "\ud800"}), "lone surrogate"),
        (delivered(detail={"pad": "x" * 262_144}), "limit is 262,144"),
    ],
    ids=["arbiter", "arbiter.reflection", "deep", "nan", "huge", "surrogate", "oversize"],
)
def test_ingress_refuses_past_the_boundary_and_writes_nothing(
    deployment: MotoDeployment, aws: Backends, event: dict[str, Any], words: str
) -> None:
    result = arbiter.aws_lambda.handler(event, FakeLambdaContext())
    assert result["status"] == "rejected" and words in result["error"]
    assert aws.blackboard.list_orchestrations(None, limit=5) == []


def test_a_replay_with_other_content_is_a_counted_conflict(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{EXAMPLES / 'restaurant' / 'scripted.json'}")
    register_example(aws, "restaurant")
    event = load_event_file(EXAMPLES / "restaurant" / "event.json").to_dict()
    event.update(id="7c5f7a5e-0000-4000-8000-00000000c0f1", time=datetime.now(UTC).isoformat())
    first = arbiter.aws_lambda.handler(event, FakeLambdaContext())
    capsys.readouterr()
    replay = arbiter.aws_lambda.handler({**event, "detail": {"table": 99}}, FakeLambdaContext())
    assert first["status"] == "started"
    assert replay == {"status": "conflict", "orchestration_id": first["orchestration_id"]}
    assert '"EventConflicts"' in capsys.readouterr().out  # the metric, in the embedded metric format
    (stored,) = aws.blackboard.list_orchestrations(None, limit=5)
    assert stored.event.detail == event["detail"]
