"""The dashboard over the AWS backends (moto): the same pages and decisions as on the embedded home."""

from __future__ import annotations

import pytest

from arbiter import LocalRuntime
from arbiter.config import Deployment
from arbiter.decisions import decision_history
from blackboard import AgentState, Backends, Event, Orchestration
from tests.arbiter.ui_support import GATE, client, seed
from tests.aws.deployment import MotoDeployment

pytestmark = pytest.mark.aws


def test_the_dashboard_reads_and_decides_on_the_aws_backends(deployment: MotoDeployment, aws: Backends) -> None:
    seed(aws)
    stored = Orchestration(event=Event.model_validate({"source": "shop", "detail-type": "Order", "detail": {}}))
    aws.blackboard.create_orchestration(stored)
    with LocalRuntime(start=False, deployment=Deployment(backends=aws)) as rt:
        web = client(rt)
        assert f'data-id="{stored.id}"' in web.get("/").text
        assert "shop / Order" in web.get(f"/orchestrations/{stored.id}").text
        assert 'data-agent="counter@2"' in web.get("/approvals").text
        assert '<span class="k">def</span>' in web.get("/agents/counter/2").text  # the code, read from S3
        form = {"csrf": GATE.csrf, "reason": "reviewed", "who": "ada"}
        assert web.post("/agents/counter/2/approve", data=form).status_code == 303
        second = web.post("/agents/counter/2/approve", data={**form, "who": "bob"})
        assert second.status_code == 409 and "already approved" in second.text
        assert aws.registry.get("counter", 2).state is AgentState.ACTIVE
        assert [(d.action, d.by) for d in decision_history(aws, "counter")] == [("approve", "ada via ui")]
