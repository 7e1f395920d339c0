"""The AWS path end to end on moto: bus -> rule -> arbiter -> SQS -> wrapper -> bus -> arbiter -> answer.

An event published to the bus is routed by the ingress rule to a queue (moto cannot invoke Lambda targets); the
deployment hands it to the arbiter function; tasks flow through the SQS task queue to the wrapper function; their
completions go through the bus back to the arbiter function, until the orchestration completes and the
``orchestration.completed`` event reaches the results queue.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import arbiter.aws_lambda
import fabricator.aws_lambda
import wrapper.aws_lambda
from arbiter.inputs import load_event_file
from arbiter.runtime import Deployment, LocalRuntime
from blackboard import AgentOrigin, AgentState, Backends, OrchestrationStatus, TaskState
from tests.aws.conftest import EXAMPLES, register_example
from tests.aws.deployment import MotoDeployment

pytestmark = [pytest.mark.aws, pytest.mark.slow]


def _event(example: str) -> dict[str, object]:
    return load_event_file(EXAMPLES / example / "event.json").to_dict()


def test_restaurant_order_end_to_end(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{EXAMPLES / 'restaurant' / 'scripted.json'}")
    register_example(aws, "restaurant")
    event_id = deployment.put_event(_event("restaurant"))

    deployment.pump(arbiter.aws_lambda.handler, wrapper.aws_lambda.handler)

    (orchestration,) = aws.blackboard.list_orchestrations(None, limit=10)
    assert orchestration.event.id == event_id
    assert orchestration.status is OrchestrationStatus.COMPLETED, orchestration.error
    tasks = aws.blackboard.list_tasks(orchestration.id)
    assert sorted(t.agent.name for t in tasks) == ["burger_cook", "front_counter", "fry_cook", "fry_cook"]
    assert all(t.state is TaskState.SUCCEEDED and t.attempt == 1 for t in tasks)
    assert orchestration.usage.waves == 2
    (result,) = deployment.drain("results")
    finished = json.loads(result["Body"])
    assert finished["detail-type"] == "orchestration.completed"
    assert finished["detail"]["orchestration_id"] == orchestration.id
    assert deployment.drain("task-dlq") == [] and deployment.drain("completions") == []
    stats = aws.registry.active("fry_cook").stats
    assert (stats.invocations, stats.succeeded) == (2, 2)


def test_incident_fabricates_a_worker_through_the_fabrication_queue(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    incident = EXAMPLES / "incident"
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{incident / 'scripted.json'}")
    monkeypatch.setenv("ARBITER_FABRICATOR_MODEL", f"scripted:{incident / 'fabricator.json'}")
    register_example(aws, "incident")
    deployment.put_event(_event("incident"))

    deployment.pump(arbiter.aws_lambda.handler, wrapper.aws_lambda.handler, fabricator.aws_lambda.handler)

    (orchestration,) = aws.blackboard.list_orchestrations(None, limit=10)
    assert orchestration.status is OrchestrationStatus.COMPLETED, orchestration.error
    fabricated = [m for m in aws.registry.list_agents(AgentState.ACTIVE) if m.origin is AgentOrigin.FABRICATOR]
    assert len(fabricated) == 1
    used = {t.agent.name for t in aws.blackboard.list_tasks(orchestration.id) if t.state is TaskState.SUCCEEDED}
    assert {"fabricate", fabricated[0].name} <= used
    assert aws.code_store.get(fabricated[0].code.sha256)  # the code is in the code bucket, verified


GRILL_CHECK = """def handler(table: int, burgers: int) -> dict:
    return {"table": table, "checked": burgers, "grill": "clean"}
"""


def test_a_note_trigger_adds_a_reactive_task_through_the_deployed_handlers(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{EXAMPLES / 'restaurant' / 'scripted.json'}")
    register_example(aws, "restaurant")
    module = tmp_path / "grill_check.py"
    module.write_text(GRILL_CHECK)
    with LocalRuntime(deployment=Deployment(backends=aws), start=False) as runtime:
        runtime.register_agent(
            "grill_check",
            "Checks the grill after burgers were grilled.",
            module,
            input_schema={
                "type": "object",
                "properties": {"table": {"type": "integer"}, "burgers": {"type": "integer"}},
            },
            triggers=[
                {
                    "pattern": {"note": {"key": ["grill"]}},
                    "input": {"table": "$.note.value.last_table", "burgers": "$.note.value.burgers"},
                }
            ],
        )
    deployment.put_event(_event("restaurant"))

    deployment.pump(arbiter.aws_lambda.handler, wrapper.aws_lambda.handler)

    (orchestration,) = aws.blackboard.list_orchestrations(None, limit=10)
    assert orchestration.status is OrchestrationStatus.COMPLETED, orchestration.error
    tasks = aws.blackboard.list_tasks(orchestration.id)
    (reactive,) = [t for t in tasks if t.reactive]
    assert reactive.agent.name == "grill_check" and reactive.wave == 1 and reactive.state is TaskState.SUCCEEDED
    assert reactive.input == {"table": 7, "burgers": 2}
    assert orchestration.usage.tasks == len(tasks) == 5 and orchestration.usage.waves == 2
    note = aws.blackboard.get_note(orchestration.id, "grill_check@grill")
    assert note is not None and note.value == {"table": 7, "checked": 2, "grill": "clean"}
    # The planner's second turn came after the reaction: the wave waited for it and its note was in the results.
    answer = next(m for m in orchestration.conversation if m["role"] == "user" and "toolResult" in m["content"][0])
    assert "grill_check@grill" in answer["content"][-1]["text"]
    assert deployment.drain("task-dlq") == []


CATALOG = """def handler(name: str, version: int, sha256: str) -> dict:
    return {"catalogued": name + "@" + str(version), "sha256": sha256}
"""


def test_a_bus_trigger_on_agent_published_starts_a_standing_orchestration_through_the_deployed_handlers(
    deployment: MotoDeployment, aws: Backends, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    incident = EXAMPLES / "incident"
    monkeypatch.setenv("ARBITER_MODEL", f"scripted:{incident / 'scripted.json'}")
    monkeypatch.setenv("ARBITER_FABRICATOR_MODEL", f"scripted:{incident / 'fabricator.json'}")
    register_example(aws, "incident")
    module = tmp_path / "catalog.py"
    module.write_text(CATALOG)
    with LocalRuntime(deployment=Deployment(backends=aws), start=False) as runtime:
        runtime.register_agent(
            "catalog",
            "Catalogues every fabricated version.",
            module,
            input_schema={
                "type": "object",
                "properties": {"name": {"type": "string"}, "version": {"type": "integer"}, "sha256": {}},
                "required": ["name", "version", "sha256"],
            },
            triggers=[
                {
                    "pattern": {"source": ["arbiter.fabricator"], "detail-type": ["agent.published"]},
                    "input": {"name": "$.detail.name", "version": "$.detail.version", "sha256": "$.detail.code_sha256"},
                }
            ],
        )
    deployment.put_event(_event("incident"))

    deployment.pump(arbiter.aws_lambda.handler, wrapper.aws_lambda.handler, fabricator.aws_lambda.handler)

    orchestrations = aws.blackboard.list_orchestrations(None, limit=10)
    (planned,) = [o for o in orchestrations if not o.standing]
    (standing,) = [o for o in orchestrations if o.standing]
    assert planned.status is OrchestrationStatus.COMPLETED, planned.error
    (fabricated,) = [m for m in aws.registry.list_agents(AgentState.ACTIVE) if m.origin is AgentOrigin.FABRICATOR]
    assert standing.status is OrchestrationStatus.COMPLETED, standing.error
    assert standing.triggered_by == f"agent.published.{fabricated.name}.1.active"
    (task,) = aws.blackboard.list_tasks(standing.id)
    assert task.agent.name == "catalog" and task.state is TaskState.SUCCEEDED
    assert standing.output == {"catalog@1": {"catalogued": f"{fabricated.name}@1", "sha256": fabricated.code.sha256}}
    assert aws.registry.active("catalog").stats.succeeded == 1
    assert deployment.drain("task-dlq") == [] and deployment.drain("ingress") == []
