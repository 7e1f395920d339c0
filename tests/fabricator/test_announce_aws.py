"""``agent.published`` on EventBridge (moto): the Fabricator's announcement reaches a rule's target intact."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest

from blackboard import AgentManifest, AgentState, memory_backends
from blackboard.adapters.aws import EventBridgeBus, event_from_eventbridge
from blackboard.announcements import AGENT_PUBLISHED_DETAIL_TYPE, FABRICATOR_SOURCE, AgentPublished
from fabricator.publisher import announce
from tests.aws_io_support import MotoResources, moto_resources

pytestmark = pytest.mark.aws

PATTERN = {"source": [FABRICATOR_SOURCE], "detail-type": [AGENT_PUBLISHED_DETAIL_TYPE]}


@pytest.fixture
def resources() -> Iterator[MotoResources]:
    with moto_resources() as created:
        yield created


def test_agent_published_goes_through_eventbridge_to_a_rule_target(resources: MotoResources) -> None:
    sqs, events = resources.client("sqs"), resources.client("events")
    url = sqs.create_queue(QueueName="published")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="published", EventBusName=resources.bus_name, EventPattern=json.dumps(PATTERN))
    events.put_targets(Rule="published", EventBusName=resources.bus_name, Targets=[{"Id": "q", "Arn": arn}])
    backends = replace(memory_backends(), bus=EventBridgeBus(resources.bus_name, client=events))
    code = backends.code_store.put(b"def handler(text: str) -> dict:\n    return {}\n")
    manifest = AgentManifest(
        name="word_counter", version=2, description="Counts words.", code=code, state=AgentState.PENDING_APPROVAL
    )

    assert announce(backends.bus, manifest, orchestration_id="o1", task_id="t1") is not None

    (message,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    event = event_from_eventbridge(message["Body"])
    assert (event.source, event.detail_type) == (FABRICATOR_SOURCE, AGENT_PUBLISHED_DETAIL_TYPE)
    detail = AgentPublished.parse(event.detail)
    assert (detail.name, detail.version, detail.state) == ("word_counter", 2, AgentState.PENDING_APPROVAL)
    assert (detail.code_sha256, detail.orchestration_id, detail.task_id) == (code.sha256, "o1", "t1")
