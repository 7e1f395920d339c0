"""The Lambda handlers called with real-shaped events against moto: bad input ends in a clear error or the DLQ."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from strands.types.exceptions import ModelThrottledException

import arbiter.aws_lambda
import wrapper.aws_lambda
from arbiter import PlannerError
from arbiter._planner_retry import PlannerRetry
from arbiter.inputs import load_event_file
from arbiter.runtime import Deployment, LocalRuntime
from blackboard import Backends, Budget, Event, OrchestrationStatus, TaskState
from blackboard.messages import new_completion_token
from tests.aws.conftest import EXAMPLES, register_example
from tests.aws.deployment import ACCOUNT, REGION, FakeLambdaContext, MotoDeployment
from tests.flaky_model import FakeFailingModel

pytestmark = pytest.mark.aws


def _restaurant(monkeypatch: pytest.MonkeyPatch, aws: Backends) -> dict[str, Any]:
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{EXAMPLES / 'restaurant' / 'scripted.json'}")
    register_example(aws, "restaurant")
    event = load_event_file(EXAMPLES / "restaurant" / "event.json").to_dict()
    event["id"] = "7c5f7a5e-0000-4000-8000-000000000001"
    event["time"] = datetime.now(UTC).isoformat()
    return event


def test_malformed_event_is_rejected_not_retried(deployment: MotoDeployment, aws: Backends) -> None:
    result = arbiter.aws_lambda.handler({"source": "x", "detail": "not an object"}, FakeLambdaContext())
    assert result["status"] == "rejected" and "detail" in result["error"]
    assert aws.blackboard.list_orchestrations(None, limit=5) == []


def test_ingress_is_idempotent_on_the_event_id(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _restaurant(monkeypatch, aws)
    first = arbiter.aws_lambda.handler(event, FakeLambdaContext())
    again = arbiter.aws_lambda.handler(event, FakeLambdaContext())  # EventBridge retried the delivery
    assert first["status"] == again["status"] == "started"
    assert first["orchestration_id"] == again["orchestration_id"]
    assert len(aws.blackboard.list_tasks(first["orchestration_id"])) == 3
    assert len(deployment.drain("task")) == 3  # one message per task, none doubled


def test_poison_task_message_fails_its_record_only_then_reaches_the_dlq(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _restaurant(monkeypatch, aws)
    started = arbiter.aws_lambda.handler(event, FakeLambdaContext())
    deployment.sqs.send_message(QueueUrl=deployment.queues["task"], MessageBody="{not json")
    response = deployment.deliver_batch("task", wrapper.aws_lambda.handler)
    assert response is not None
    assert len(response["batchItemFailures"]) == 1  # the three good records succeeded
    tasks = aws.blackboard.list_tasks(started["orchestration_id"])
    assert all(t.state is TaskState.SUCCEEDED for t in tasks)
    for _ in range(deployment.max_receives):  # SQS delivers it again until maxReceiveCount
        deployment.deliver_batch("task", wrapper.aws_lambda.handler)
    (dead,) = deployment.drain("task-dlq")
    assert dead["Body"] == "{not json"


def test_duplicate_delivery_runs_the_task_once(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _restaurant(monkeypatch, aws)
    started = arbiter.aws_lambda.handler(event, FakeLambdaContext())
    messages = deployment.drain("task")
    batch = deployment.sqs_event("task", messages)
    first = wrapper.aws_lambda.handler(batch, FakeLambdaContext())
    second = wrapper.aws_lambda.handler(batch, FakeLambdaContext())  # the same records delivered again
    assert first["batchItemFailures"] == second["batchItemFailures"] == []
    tasks = aws.blackboard.list_tasks(started["orchestration_id"])
    assert [(t.state, t.attempt) for t in tasks] == [(TaskState.SUCCEEDED, 1)] * 3
    completions = [json.loads(m["Body"]) for m in deployment.drain("completions")]
    assert len(completions) == 3  # one completion per task, not six


def test_scheduled_sweep_fails_an_orchestration_past_its_deadline(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _restaurant(monkeypatch, aws)
    started = arbiter.aws_lambda.coordinator().start(Event.parse(event), Budget(timeout_seconds=1))
    for message in deployment.drain("task"):  # the messages are lost: nobody will run these tasks
        deployment.sqs.delete_message(QueueUrl=deployment.queues["task"], ReceiptHandle=message["ReceiptHandle"])
    time.sleep(1.2)
    scheduled = {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": datetime.now(UTC).isoformat(),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/arbiter-sweep"],
        "detail": {},
    }
    result = arbiter.aws_lambda.handler(scheduled, FakeLambdaContext())
    assert result["status"] == "swept" and result["orchestrations_failed"] == 1
    orchestration = aws.blackboard.get_orchestration(started.id)
    assert orchestration.status is OrchestrationStatus.FAILED and "deadline" in (orchestration.error or "")
    (finished,) = deployment.drain("results")
    assert json.loads(finished["Body"])["detail-type"] == "orchestration.failed"


def test_missing_configuration_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from blackboard import ConfigurationError
    from blackboard.adapters.aws import AwsConfig

    for var in ("ARBITER_BLACKBOARD_TABLE", "ARBITER_BUS_NAME"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigurationError, match=r"ARBITER_BLACKBOARD_TABLE .*BlackboardTableName"):
        AwsConfig.from_env({"ARBITER_REGISTRY_TABLE": "r"}).require()


# ---------------------------------------------------------------- forged completions


def _completion_event(
    task: Any, source: str = "arbiter.wrapper", account: str = ACCOUNT, **detail: Any
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "task.completed",
        "source": source,
        "account": account,
        "time": datetime.now(UTC).isoformat(),
        "region": REGION,
        "resources": [],
        "detail": {
            "orchestration_id": task.orchestration_id,
            "task_id": task.task_id,
            "attempt": task.attempt,
            "agent": task.agent.model_dump(),
            "status": "succeeded",
            "output": "the attacker's result",
            **detail,
        },
    }


def test_forged_completions_do_not_complete_a_running_task(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = arbiter.aws_lambda.handler(_restaurant(monkeypatch, aws), FakeLambdaContext())
    task = aws.blackboard.list_tasks(started["orchestration_id"])[0]
    assert aws.blackboard.claim(task.orchestration_id, task.task_id, 1).applied  # a worker is running it
    assert task.token is not None
    probes = {
        "foreign source, even with the token": _completion_event(task, source="acme.billing", token=task.token),
        "no token": _completion_event(task),
        "another task's token": _completion_event(task, token=new_completion_token()),
        "another account": _completion_event(task, account="210987654321", token=task.token),
    }
    statuses = {}
    for probe, forged in probes.items():
        statuses[probe] = arbiter.aws_lambda.handler(forged, FakeLambdaContext())["status"]
        after = aws.blackboard.get_task(task.orchestration_id, task.task_id)
        assert after.state is TaskState.RUNNING and after.result is None, probe
    # A foreign source is never a completion: it is an ordinary event, which the ingress rule may let in.
    assert statuses == {
        "foreign source, even with the token": "started",
        "no token": "refused",
        "another task's token": "refused",
        "another account": "refused",
    }
    genuine = arbiter.aws_lambda.handler(_completion_event(task, output="fries", token=task.token), FakeLambdaContext())
    assert genuine["status"] == "recorded"
    assert aws.blackboard.get_task(task.orchestration_id, task.task_id).state is TaskState.SUCCEEDED


# ---------------------------------------------------------------- transient errors and the invocation's time


def test_a_transient_planner_failure_is_raised_and_eventbridges_retry_plans(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _restaurant(monkeypatch, aws)
    engine = arbiter.aws_lambda.coordinator()
    engine.planner.model = FakeFailingModel(engine.planner.model, ModelThrottledException("slow down"), failures=2)
    engine.settings = replace(engine.settings, planner_retry=PlannerRetry(attempts=2, backoff_seconds=0))
    with pytest.raises(PlannerError) as raised:
        arbiter.aws_lambda.handler(event, FakeLambdaContext())
    assert raised.value.retryable
    (waiting,) = aws.blackboard.list_orchestrations(None, limit=5)
    assert waiting.status is OrchestrationStatus.RUNNING and aws.blackboard.list_tasks(waiting.id) == []
    again = arbiter.aws_lambda.handler(event, FakeLambdaContext())  # EventBridge delivers the event again
    assert again == {"status": "started", "orchestration_id": waiting.id}
    assert len(aws.blackboard.list_tasks(waiting.id)) == 3 and len(deployment.drain("task")) == 3


class ShortLambdaContext(FakeLambdaContext):
    """An invocation that has almost no time left."""

    def get_remaining_time_in_millis(self) -> int:
        return 1_000


def test_the_wrapper_starts_no_task_the_invocation_has_no_time_for(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = arbiter.aws_lambda.handler(_restaurant(monkeypatch, aws), FakeLambdaContext())
    batch = deployment.sqs_event("task", deployment.drain("task"))
    response = wrapper.aws_lambda.handler(batch, ShortLambdaContext())
    assert len(response["batchItemFailures"]) == 3  # delivered again, to an invocation with time
    tasks = aws.blackboard.list_tasks(started["orchestration_id"])
    assert [(t.state, t.attempt) for t in tasks] == [(TaskState.DISPATCHED, 1)] * 3  # no attempt used


def test_a_message_for_a_task_that_does_not_exist_is_dead_lettered_at_once(
    deployment: MotoDeployment, aws: Backends
) -> None:
    from blackboard import AgentRef, TaskMessage

    message = TaskMessage(
        orchestration_id="01M000000000000000000NONE0", task_id="nowhere", attempt=1, agent=AgentRef(name="x", version=1)
    )
    body = message.model_dump_json(by_alias=True)
    deployment.sqs.send_message(QueueUrl=deployment.queues["task"], MessageBody=body)
    response = deployment.deliver_batch("task", wrapper.aws_lambda.handler)
    assert response is not None and response["batchItemFailures"] == []  # not failed again and again
    (dead,) = deployment.drain("task-dlq")  # at once, not after maxReceiveCount deliveries
    assert dead["Body"] == body
    assert deployment.drain("task") == []


def _announcement(account: str = ACCOUNT, *, name: str = "fry_cook", event_id: str | None = None) -> dict[str, Any]:
    code = "0" * 64
    detail = {"name": name, "version": 1, "state": "active", "origin": "user", "code_sha256": code, "code_key": code}
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "source": "arbiter.fabricator",
        "detail-type": "agent.published",
        "account": account,
        "region": REGION,
        "time": datetime.now(UTC).isoformat(),
        "resources": [],
        "detail": detail,
    }


def _register_listener(aws: Backends, tmp_path: Any) -> None:
    module = tmp_path / "listener.py"
    module.write_text("def handler(name: str) -> dict:\n    return {'seen': name}\n")
    with LocalRuntime(deployment=Deployment(backends=aws), start=False) as runtime:
        runtime.register_agent(
            "listener",
            "Notes every published version.",
            module,
            input_schema={"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            triggers=[
                {
                    "pattern": {"source": ["arbiter.fabricator"], "detail-type": ["agent.published"]},
                    "input": {"name": "$.detail.name"},
                },
                {"pattern": {"source": ["shop.orders"]}, "input": {"name": "$.detail.order"}},
            ],
        )


def test_an_announcement_starts_one_standing_orchestration_however_often_it_comes(
    deployment: MotoDeployment, aws: Backends, tmp_path: Any
) -> None:
    assert arbiter.aws_lambda.handler(_announcement(), FakeLambdaContext()) == {"status": "no trigger"}
    _register_listener(aws, tmp_path)
    first = arbiter.aws_lambda.handler(_announcement(), FakeLambdaContext())
    # The Fabricator announced the same version again: EventBridge gave it another id, the key is the same.
    again = arbiter.aws_lambda.handler(_announcement(), FakeLambdaContext())
    assert first["status"] == again["status"] == "triggered"
    assert first["orchestration_id"] == again["orchestration_id"]
    (orchestration,) = aws.blackboard.list_orchestrations(None, limit=5)
    assert orchestration.triggered_by == "agent.published.fry_cook.1.active"
    (task,) = aws.blackboard.list_tasks(orchestration.id)
    assert task.input == {"name": "fry_cook"} and task.state is TaskState.DISPATCHED
    assert len(deployment.drain("task")) == 1


def test_an_announcement_from_another_account_is_rejected(
    deployment: MotoDeployment, aws: Backends, tmp_path: Any
) -> None:
    _register_listener(aws, tmp_path)
    result = arbiter.aws_lambda.handler(_announcement("999999999999"), FakeLambdaContext())
    assert result["status"] == "rejected" and "999999999999" in result["error"]
    assert aws.blackboard.list_orchestrations(None, limit=5) == []


def test_an_ingress_event_starts_its_orchestration_and_fires_bus_triggers(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{EXAMPLES / 'restaurant' / 'scripted.json'}")
    _register_listener(aws, tmp_path)
    event = {
        "version": "0",
        "id": "order-1",
        "source": "shop.orders",
        "detail-type": "Order",
        "account": ACCOUNT,
        "region": REGION,
        "time": datetime.now(UTC).isoformat(),
        "resources": [],
        "detail": {"order": "A7"},
    }
    registry = arbiter.aws_lambda.coordinator().backends.registry
    revisions: list[int] = []
    read = registry._revision
    monkeypatch.setattr(registry, "_revision", lambda: revisions.append(read()) or revisions[-1])
    result = arbiter.aws_lambda.handler(event, FakeLambdaContext())
    assert result["status"] == "started" and result["triggered"] != result["orchestration_id"]
    assert len(revisions) == 1  # the first turn's agents and the bus triggers: one reading of the registry
    standing = aws.blackboard.get_orchestration(result["triggered"])
    assert standing.triggered_by == "order-1" and standing.event.id == "triggers:order-1"
    (task,) = aws.blackboard.list_tasks(standing.id)
    assert task.input == {"name": "A7"}
