"""The command line against the deployed resources (moto): ``arbiter publish`` and ``arbiter --backend aws ...``."""

from __future__ import annotations

import json

import pytest

from blackboard import Backends
from tests.arbiter.test_cli import invoke
from tests.aws.conftest import EXAMPLES, register_example
from tests.aws.deployment import MotoDeployment

pytestmark = pytest.mark.aws


def test_publish_prints_the_id_eventbridge_gave_the_event(deployment: MotoDeployment) -> None:
    code, out, err = invoke("publish", str(EXAMPLES / "restaurant" / "event.json"), "--bus", deployment.bus, "--json")
    assert code == 0, err
    published = json.loads(out)
    (delivered,) = deployment.drain("ingress")  # the ingress rule routed it
    body = json.loads(delivered["Body"])
    assert body["id"] == published["event_id"] and body["source"] == "meal.request"


def test_publish_takes_the_bus_from_the_environment(deployment: MotoDeployment) -> None:
    code, out, err = invoke("publish", str(EXAMPLES / "restaurant" / "event.json"))
    assert code == 0, err
    assert len(out.strip()) == 36  # EventBridge's event id
    assert len(deployment.drain("ingress")) == 1


def test_agents_and_orchestrations_on_the_aws_backend(deployment: MotoDeployment, aws: Backends) -> None:
    register_example(aws, "restaurant")
    code, out, err = invoke("--backend", "aws", "agents", "list", "--json")
    assert code == 0, err
    assert sorted(a["name"] for a in json.loads(out)) == ["burger_cook", "front_counter", "fry_cook"]
    code, out, err = invoke("--backend", "aws", "orchestrations", "list", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_resource_flags_override_the_environment(deployment: MotoDeployment, aws: Backends) -> None:
    register_example(aws, "restaurant")
    code, _, err = invoke("--backend", "aws", "--resource", "registry_table=no-such-table", "agents", "list", "--json")
    assert code == 2 and "no-such-table" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "aws", "--resource", "bogus=1", "agents", "list"], "expected NAME=VALUE"),
        (["--backend", "gcp", "agents", "list"], "--backend must be one of local, aws"),
    ],
)
def test_bad_backend_options_are_usage_errors(args: list[str], message: str) -> None:
    code, _, err = invoke(*args)
    assert code == 2 and message in err


def test_aws_backend_without_configuration_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ARBITER_BLACKBOARD_TABLE", "ARBITER_REGISTRY_TABLE", "ARBITER_BUS_NAME", "ARBITER_STACK"):
        monkeypatch.delenv(var, raising=False)
    code, _, err = invoke("--backend", "aws", "agents", "list")
    assert code == 2 and "ARBITER_BLACKBOARD_TABLE" in err and "--stack" in err
