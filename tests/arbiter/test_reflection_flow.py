"""End to end through LocalRuntime: a fabricated agent fails, is quarantined, is rewritten, and v2 is used.

The planner and the Fabricator are ScriptedModels; the agents run in the sandbox; validation is the real harness.
"""

from __future__ import annotations

import time
from typing import Any

from arbiter import LocalRuntime
from arbiter.reflection import REFLECTION_SOURCE, AgentQuarantined, note_key
from arbiter.testing import ScriptedModel
from blackboard import AgentManifest, AgentOrigin, AgentState, Event, TaskState
from tests.arbiter.conftest import RuntimeFactory, event
from tests.fabrication_turns import case_table_turn

BROKEN = "def handler(a: int, b: int) -> dict:\n    return {'ratio': a / b}\n"
FIXED = (
    "def handler(a: int, b: int) -> dict:\n"
    "    if b == 0:\n"
    "        return {'ratio': None, 'note': 'b is zero: no ratio'}\n"
    "    return {'ratio': a / b}\n"
)
SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}
DESCRIPTION = "Divides a by b and returns the ratio."


def call(**data: Any) -> dict[str, Any]:
    return {"name": "ratio", "input": data}


def _publish_broken(rt: LocalRuntime) -> None:
    code = rt.backends.code_store.put(BROKEN.encode())
    rt.backends.registry.put(
        AgentManifest(
            name="ratio",
            version=1,
            description=DESCRIPTION,
            input_schema=SCHEMA,
            code=code,
            origin=AgentOrigin.FABRICATOR,
            max_attempts=1,
            timeout_seconds=20,
        )
    )


def _wait_for_version(rt: LocalRuntime, name: str, version: int, timeout: float = 90.0) -> AgentManifest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        versions = rt.backends.registry.versions(name)
        if len(versions) >= version:
            return versions[version - 1]
        time.sleep(0.05)
    raise AssertionError(f"{name}@{version} was not published within {timeout}s")


def test_failing_agent_is_quarantined_rewritten_and_replaced(runtime: RuntimeFactory) -> None:
    turns = [
        {"tool_calls": [call(a=n, b=0) for n in range(1, 6)]},
        {"text": "The ratios could not be computed."},
        {"tool_calls": [call(a=6, b=0), call(a=6, b=3)]},
        {"text": "6/3 = 2; 6/0 has no ratio."},
    ]
    fabricator = ScriptedModel(
        [
            case_table_turn("assert handler(a=6, b=3)['ratio'] == 2.0", "assert handler(a=1, b=0)['ratio'] is None"),
            {
                "structured": {
                    "name": "ratio",
                    "description": DESCRIPTION + " A zero divisor gives no ratio instead of an error.",
                    "code": FIXED,
                    "input_schema": SCHEMA,
                    "output_schema": {"type": "object", "properties": {"ratio": {"type": ["number", "null"]}}},
                    "sample_inputs": [{"a": 1, "b": 0}, {"a": 6, "b": 3}],
                }
            },
        ]
    )
    rt = runtime(turns, fabricator_model=fabricator)
    planner = rt.coordinator.planner.model
    assert isinstance(planner, ScriptedModel)
    seen: list[Event] = []
    rt.backends.bus.subscribe({"source": [REFLECTION_SOURCE]}, seen.append, name="test-reflection")
    _publish_broken(rt)

    first = rt.run(event(task="ratios"), timeout=120)
    assert first.ok and first.output == "The ratios could not be computed."
    assert all(t.state is TaskState.FAILED for t in rt.orchestration(first.orchestration_id).tasks)
    v1 = rt.backends.registry.get("ratio", 1)
    assert v1.state is AgentState.QUARANTINED
    assert (v1.stats.invocations, v1.stats.failed, sum(v1.stats.duration_buckets)) == (5, 5, 5)
    assert "ratio" not in planner.requests[1].tool_names  # quarantined before the planner's next call
    (quarantined,) = [AgentQuarantined.parse(e.detail) for e in seen]
    assert quarantined.refabrication_requested and quarantined.orchestration_id == first.orchestration_id

    v2 = _wait_for_version(rt, "ratio", 2)
    assert v2.state is AgentState.ACTIVE and v2.origin is AgentOrigin.FABRICATOR and v2.input_schema == SCHEMA
    assert v2.validation_report is not None
    assert rt.backends.code_store.get_json(v2.validation_report)["passed"] is True
    # The tests come first (fabricator.requests[0]); the draft's prompt carries the failures it replaces.
    prompt = "".join(b.get("text", "") for m in fabricator.requests[1].messages for b in m["content"])
    assert "replaces the agent 'ratio'" in prompt and "ZeroDivisionError" in prompt and '"b": 0' in prompt

    second = rt.run(event(task="more ratios"), timeout=120)
    assert second.ok and "ratio" in planner.requests[2].tool_names
    tasks = rt.orchestration(second.orchestration_id).tasks
    assert [(t.agent.version, t.state) for t in tasks] == [(2, TaskState.SUCCEEDED)] * 2
    assert [t.result.output["ratio"] for t in tasks if t.result] == [None, 2.0]
    assert [m.state for m in rt.backends.registry.versions("ratio")] == [AgentState.QUARANTINED, AgentState.ACTIVE]
    assert rt.backends.registry.get("ratio", 2).stats.succeeded == 2

    note = rt.backends.blackboard.get_note(first.orchestration_id, note_key("ratio", 1))
    assert note is not None and note.value["replacement"] == "ratio@2" and "5 of 5" in note.value["reason"]
