"""Records and messages: wire shapes, seed-compatible aliases, validation errors that name the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from blackboard import (
    AgentManifest,
    AgentRef,
    Budget,
    BudgetUsage,
    CompletionEvent,
    Event,
    Orchestration,
    OrchestrationFinished,
    OrchestrationStatus,
    RecordValidationError,
    Task,
    TaskError,
    TaskMessage,
    TaskResult,
    TaskState,
)
from blackboard.records import CodeRef

SHA = "a" * 64


def test_event_envelope_round_trips_with_eventbridge_names() -> None:
    raw = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-11-29T10:00:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:high-cpu"],
        "detail": {"alarmName": "high-cpu", "state": {"value": "ALARM"}},
        "replay-name": "replay-1",
    }
    event = Event.parse(raw)
    assert event.detail_type == "CloudWatch Alarm State Change"
    assert event.time == datetime(2026, 11, 29, 10, tzinfo=UTC)
    wire = event.to_dict()
    assert wire["detail-type"] == raw["detail-type"] and "detail_type" not in wire
    assert wire["replay-name"] == "replay-1"
    assert Event.parse_json(event.to_json()) == event


def test_event_fills_id_and_time() -> None:
    event = Event.parse({"source": "s", "detail-type": "d", "detail": {}})
    assert event.id and event.time.tzinfo is not None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"detail-type": "d", "detail": {}}, "source"),
        ({"source": "s", "detail": {}}, "detail-type"),
        ({"source": "s", "detail-type": "d"}, "detail"),
        ({"source": "s", "detail-type": "d", "detail": []}, "detail"),
        ({"source": "", "detail-type": "d", "detail": {}}, "source"),
        ({"source": "s", "detail-type": "d", "detail": {}, "time": "yesterday"}, "time"),
    ],
)
def test_malformed_event_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(RecordValidationError) as raised:
        Event.parse(data)
    assert raised.value.field == field
    assert field in str(raised.value)


def test_event_that_is_not_json() -> None:
    with pytest.raises(RecordValidationError, match="Event"):
        Event.parse_json("{not json")


def test_task_message_writes_and_reads_seed_aliases() -> None:
    message = TaskMessage(
        orchestration_id="o", task_id="tooluse_1", attempt=2, agent=AgentRef(name="fry_cook", version=3), input={"n": 2}
    )
    wire = message.to_dict()
    assert wire["schema"] == "arbiter.task/2"
    assert (wire["tool_use_id"], wire["node"], wire["tool_input"]) == ("tooluse_1", "fry_cook", {"n": 2})
    assert TaskMessage.parse(wire) == message
    assert TaskMessage.parse_json(json.dumps(wire)) == message
    seed = {k: v for k, v in wire.items() if k not in ("task_id", "input")}
    assert TaskMessage.parse(seed) == message


def test_disagreeing_alias_is_refused() -> None:
    wire = TaskMessage(orchestration_id="o", task_id="t", attempt=1, agent=AgentRef(name="a", version=1)).to_dict()
    with pytest.raises(RecordValidationError, match="node"):
        TaskMessage.parse({**wire, "node": "someone_else"})


def test_completion_event_data_alias_and_envelope() -> None:
    failed = CompletionEvent(
        orchestration_id="o",
        task_id="t",
        attempt=1,
        agent=AgentRef(name="a", version=1),
        status=TaskState.FAILED,
        error=TaskError(type="ValueError", message="bad input"),
    )
    event = failed.to_event()
    assert (event.source, event.detail_type) == ("arbiter.wrapper", "task.completed")
    assert event.detail["data"] == "ValueError: bad input" and event.detail["tool_use_id"] == "t"
    assert CompletionEvent.parse(event.detail) == failed
    succeeded = failed.model_copy(update={"status": TaskState.SUCCEEDED, "error": None, "output": {"x": 1}})
    assert succeeded.to_dict()["data"] == {"x": 1}


def test_orchestration_finished_event() -> None:
    detail = OrchestrationFinished(
        orchestration_id="o", event_id="e", status=OrchestrationStatus.FAILED, error="max_waves"
    )
    event = detail.to_event()
    assert (event.source, event.detail_type) == ("arbiter", "orchestration.failed")
    assert event.detail["schema"] == "arbiter.orchestration-finished/1"


def test_records_are_versioned_and_round_trip() -> None:
    orchestration = Orchestration(event=Event.parse({"source": "s", "detail-type": "d", "detail": {}}))
    wire = orchestration.to_dict()
    assert wire["schema"] == "arbiter.orchestration/1"
    assert Orchestration.parse(wire) == orchestration
    assert orchestration.deadline is not None
    assert (orchestration.deadline - orchestration.created_at).total_seconds() == Budget().timeout_seconds


def test_budget_names_the_exceeded_limit() -> None:
    budget = Budget(max_waves=2, max_tasks=5)
    assert budget.exceeded_by(BudgetUsage(waves=2, tasks=5)) is None
    assert budget.exceeded_by(BudgetUsage(waves=3)) == "max_waves"
    assert budget.exceeded_by(BudgetUsage(tasks=6)) == "max_tasks"
    with pytest.raises(RecordValidationError, match="max_waves"):
        Budget.parse({"max_waves": 0})


def test_records_refuse_unknown_fields_and_are_immutable() -> None:
    with pytest.raises(RecordValidationError, match="surprise"):
        Budget.parse({"surprise": 1})
    budget = Budget()
    with pytest.raises(Exception, match="frozen"):
        budget.max_waves = 3  # type: ignore[misc]


def test_task_result_status_and_error_agree() -> None:
    # Building a record directly raises pydantic's ValidationError; parse() raises RecordValidationError. Both are
    # ValueErrors that name the problem.
    with pytest.raises(ValueError, match="needs an error"):
        TaskResult(status=TaskState.FAILED)
    with pytest.raises(RecordValidationError, match="carries no error"):
        TaskResult.parse({"status": "succeeded", "error": {"type": "X"}})
    with pytest.raises(RecordValidationError, match="status"):
        TaskResult.parse({"status": "running"})


@pytest.mark.parametrize("task_id", ["", "has space", "x" * 129, "semi;colon"])
def test_task_ids_are_safe_keys(task_id: str) -> None:
    with pytest.raises(RecordValidationError) as raised:
        Task.parse({"orchestration_id": "o", "task_id": task_id, "wave": 1, "agent": {"name": "a", "version": 1}})
    assert raised.value.field == "task_id"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "Has Caps"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"version": 0}, "version"),
        ({"description": ""}, "description"),
        ({"input_schema": {"type": "array"}}, "input_schema"),
        ({"input_schema": {"type": "object", "properties": 5}}, "input_schema"),
        ({"code": {"sha256": "nothex", "key": "k"}}, "code.sha256"),
        ({"state": "sleeping"}, "state"),
        ({"isolation": "none"}, "isolation"),
    ],
)
def test_manifest_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    base = {
        "name": "burger_cook",
        "version": 1,
        "description": "cooks burgers",
        "code": {"sha256": SHA, "key": SHA},
    }
    assert AgentManifest.parse(base).ref == AgentRef(name="burger_cook", version=1)
    with pytest.raises(RecordValidationError) as raised:
        AgentManifest.parse({**base, **changes})
    assert raised.value.field == field


def test_code_ref_and_agent_ref() -> None:
    assert str(AgentRef(name="fabricate")) == "fabricate"
    assert str(AgentRef(name="a", version=2)) == "a@2"
    with pytest.raises(RecordValidationError):
        CodeRef.parse({"sha256": SHA.upper(), "key": "k"})


def test_messages_of_the_schema_before_tokens_are_still_read() -> None:
    from blackboard import CompletionEvent

    task = {"schema": "arbiter.task/1", "orchestration_id": "o", "task_id": "t", "attempt": 1, "agent": {"name": "a"}}
    assert TaskMessage.parse(task).token is None
    completion = {**task, "schema": "arbiter.completion/1", "status": "succeeded", "output": 1}
    assert CompletionEvent.parse(completion).token is None


@pytest.mark.parametrize("token", ["short", "has space in it, long enough", "x" * 129])
def test_a_malformed_token_is_refused(token: str) -> None:
    wire = {"orchestration_id": "o", "task_id": "t", "attempt": 1, "agent": {"name": "a"}, "token": token}
    with pytest.raises(RecordValidationError, match="token"):
        TaskMessage.parse(wire)
