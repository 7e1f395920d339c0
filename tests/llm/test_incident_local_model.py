"""The incident scenario end to end with the real local model (Qwen2.5-Coder 1.5B, offline), through ``arbiter demo``.

Greedy decoding with a fixed seed, tool turns and drafts constrained by grammar. It takes minutes on two cores;
``make test`` installs the model first (``arbiter models pull qwen2.5-coder-1.5b``).
"""

from __future__ import annotations

import json
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

    # A worker was fabricated, passed validation, was published by the Fabricator, and then used by the planner.
    assert summary["fabricated"], summary
    made = summary["fabricated"][0]
    assert not made["reused"]
    assert made["used"] >= 1
    with LocalRuntime(home, start=False) as runtime:
        manifest = runtime.backends.registry.get(made["agent"], made["version"])
        report = runtime.backends.code_store.get_json(manifest.validation_report)
        tasks = runtime.orchestration(summary["orchestration_id"]).tasks
    assert manifest.origin is AgentOrigin.FABRICATOR and manifest.state is AgentState.ACTIVE
    assert report["passed"] and any(check["name"].startswith("example") for check in report["checks"])
    assert manifest.output_schema is not None and manifest.stats.example_checks >= 1
    used = [t for t in tasks if t.agent.name == made["agent"]]
    (parsed,) = [t.result.output for t in used if t.state is TaskState.SUCCEEDED and t.result is not None]

    # The worker read the right numbers out of the reason text, because the planner's example said what is right.
    expected = {"datapoints": [41, 57, 66], "threshold": 25, "above_threshold_by": 41}
    assert compare(expected, parsed).matches, (parsed, compare(expected, parsed))

    # The registered workers did their part: the deploys were read and on-call was paged with those numbers.
    assert any(t.agent.name == "recent_deploys" and t.state is TaskState.SUCCEEDED for t in tasks)
    (page,) = [t.result.output["page"] for t in tasks if t.agent.name == "pager" and t.result and t.result.output]
    assert "66" in page and "25" in page, page

    # The answer names the failing service, the numbers and the deploy it suspects.
    answer = summary["output"]
    assert "checkout-api" in answer
    assert "2026.11.29-1" in answer
    assert "66" in answer and "25" in answer, answer

    assert summary["model_calls"]["planner"] >= 3 and summary["model_calls"]["fabricator"] >= 1
    assert summary["tokens"] > 0 and summary["waves"] >= 2
