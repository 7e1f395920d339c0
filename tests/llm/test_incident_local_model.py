"""The incident scenario end to end with the real local model (Qwen2.5-Coder 1.5B, offline), through ``arbiter demo``.

Greedy decoding with a fixed seed, tool turns and drafts constrained by grammar. It takes minutes on two cores;
``make test`` installs the model first (``arbiter models pull qwen2.5-coder-1.5b``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arbiter.cli import app
from arbiter.runtime import LocalRuntime
from blackboard import AgentOrigin, AgentState, TaskState
from fabricator.compare import compare
from wrapper.model_store import installed_path

pytestmark = [pytest.mark.llm, pytest.mark.slow, pytest.mark.timeout(3600)]

MODEL = "qwen2.5-coder-1.5b"


@pytest.fixture(scope="module")
def model_installed() -> Path:
    path = installed_path(MODEL)
    if path is None:
        pytest.fail(f"the local model is not installed: run `arbiter models pull {MODEL}` (or `make test`)")
    return path


def test_incident_plans_fabricates_runs_and_answers(model_installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = CliRunner().invoke(app, ["demo", "--home", str(home), "--json"])
    summary = json.loads(done.stdout)
    assert done.exit_code == 0, summary
    assert summary["status"] == "completed"
    assert summary["model"] == f"local:{MODEL}"

    # The planner asked the Fabricator for the reason reader, with an acceptance example taken from the event.
    with LocalRuntime(home, start=False) as runtime:
        tasks = runtime.orchestration(summary["orchestration_id"]).tasks
        fabricated = [m for m in runtime.backends.registry.list_agents() if m.origin is AgentOrigin.FABRICATOR]
        reports = [runtime.backends.code_store.get_json(m.validation_report) for m in fabricated]
    asked = [t for t in tasks if t.agent.name == "fabricate"]
    (example,) = asked[0].input["examples"]
    assert "[41.0, 57.0, 66.0]" in example["input"]["reason"]
    assert compare({"datapoints": [41, 57, 66], "threshold": 25}, example["expected"]).matches, example

    if summary["fabricated"]:
        # Published: it reproduced the example, and the planner used it; it read the right numbers.
        manifest = fabricated[0]
        assert manifest.state is AgentState.ACTIVE and manifest.output_schema is not None
        assert reports[0]["passed"] and manifest.stats.example_checks >= 1
        used = [t for t in tasks if t.agent.name == manifest.name and t.state is TaskState.SUCCEEDED]
        assert used and used[0].result is not None
        expected = {"datapoints": [41, 57, 66], "threshold": 25, "above_threshold_by": 41}
        assert compare(expected, used[0].result.output).matches, used[0].result.output
    else:
        # Refused: no draft reproduced the example, and nothing was published (a wrong worker is never used).
        first = asked[0]
        assert first.state is TaskState.FAILED and first.result is not None and first.result.error is not None
        assert "example[0]" in first.result.error.message
        assert fabricated == []

    # The registered workers did their part: the deploys were read and on-call was paged with the threshold and a
    # datapoint of the alarm. (Which datapoint the 1.5B planner calls "the latest" is its own reading: given the
    # worker's output it has named 41, the first, where the last is 66.)
    assert any(t.agent.name == "recent_deploys" and t.state is TaskState.SUCCEEDED for t in tasks)
    (page,) = [t.result.output["page"] for t in tasks if t.agent.name == "pager" and t.result and t.result.output]
    assert "25" in page and any(v in page for v in ("41", "57", "66")), page

    # The answer names the failing service, the numbers and the deploy it suspects.
    answer = summary["output"]
    assert "checkout" in answer.lower()  # "checkout-api", "the checkout API"
    assert "2026.11.29-1" in answer
    assert "25" in answer and any(v in answer for v in ("41", "57", "66")), answer

    assert summary["model_calls"]["planner"] >= 3 and summary["model_calls"]["fabricator"] >= 1  # a draft at least
    assert summary["tokens"] > 0 and summary["waves"] >= 2


def test_a_second_run_calls_the_worker_of_the_first_with_the_alarm_text(model_installed: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = CliRunner().invoke(app, ["demo", "--home", str(home), "--json"])
    assert first.exit_code == 0, first.stdout
    with LocalRuntime(home, start=False) as runtime:
        made = [m for m in runtime.backends.registry.list_agents() if m.origin is AgentOrigin.FABRICATOR]
    if not made:
        pytest.skip("the first run published no worker (its refusal is checked by the test above)")

    again = CliRunner().invoke(app, ["demo", "--home", str(home), "--json"])
    summary = json.loads(again.stdout)
    assert again.exit_code == 0 and summary["status"] == "completed", summary
    with LocalRuntime(home, start=False) as runtime:
        tasks = runtime.orchestration(summary["orchestration_id"]).tasks
        versions = [m for m in runtime.backends.registry.list_agents() if m.origin is AgentOrigin.FABRICATOR]
    assert [(m.name, m.version) for m in versions] == [(made[0].name, made[0].version)]  # nothing written again
    event = json.loads((Path(__file__).parents[2] / "examples/incident/event.json").read_text())
    reason = event["detail"]["state"]["reason"]
    ran = [t for t in tasks if t.agent.name == made[0].name and t.state is TaskState.SUCCEEDED]
    # The worker ran on the alarm's own text (a phrase of the runbook in its place is refused before it runs).
    assert ran and ran[0].input["reason"] == reason, [t.input for t in tasks if t.agent.name == made[0].name]
    assert all(t.input["reason"] == reason for t in ran)
    # What the 1.5B planner puts in the page varies from run to run, with the threads llama.cpp gets (the
    # datapoints, the threshold, "3 out of the last 3 datapoints", the deploy or not): the page carries the worker's
    # numbers (its threshold or its datapoints), and no number that neither the event nor a result holds.
    (page,) = [t.result.output["page"] for t in tasks if t.agent.name == "pager" and t.result and t.result.output]
    assert "25" in page or all(point in page for point in ("41", "57", "66")), page
    seen = json.dumps(event) + "".join(json.dumps(t.result.output) for t in tasks if t.result and t.result.output)
    known = set(re.findall(r"\d+", seen))
    assert set(re.findall(r"\d+", page)) <= known, page
