"""Engine scenarios with a scripted planner: waves, retries, timeouts, budgets and bad model output."""

from __future__ import annotations

import threading
from typing import Any

from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from blackboard import Budget, TaskState
from tests.arbiter.conftest import RuntimeFactory, event


def call(name: str, **data: Any) -> dict[str, Any]:
    return {"name": name, "input": data}


def tool_results(runtime: Any, orchestration_id: str, wave: int) -> list[dict[str, Any]]:
    """The tool results the planner was given after ``wave``."""
    conversation = runtime.orchestration(orchestration_id).orchestration.conversation
    answers = [m for m in conversation if m["role"] == "user" and any("toolResult" in b for b in m["content"])]
    return [b["toolResult"] for b in answers[wave - 1]["content"] if "toolResult" in b]


def test_one_wave(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("double", n=21)]}, {"text": "The answer is 42."}])
    rt.register_agent("double", "Doubles a number.", lambda n: n * 2)
    result = rt.run(event(), timeout=60)
    assert result.ok and result.output == "The answer is 42." and (result.waves, result.tasks) == (1, 1)
    (answer,) = tool_results(rt, result.orchestration_id, 1)
    assert answer["status"] == "success" and answer["content"] == [{"text": "42"}]


def test_several_waves_see_earlier_results(runtime: RuntimeFactory) -> None:
    rt = runtime(
        [
            {"tool_calls": [call("double", n=1)]},
            {"tool_calls": [call("double", n=2), call("double", n=4)]},
            {"text": "done"},
        ]
    )
    seen: list[int] = []

    def double(n: int) -> int:
        seen.append(n)
        return n * 2

    rt.register_agent("double", "Doubles a number.", double)
    result = rt.run(event(), timeout=60)
    assert result.ok and (result.waves, result.tasks) == (2, 3)
    assert sorted(seen) == [1, 2, 4]
    assert [r["content"][0]["text"] for r in tool_results(rt, result.orchestration_id, 2)] == ["4", "8"]


def test_same_agent_twice_in_a_wave_is_two_tasks(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("echo", v="a"), call("echo", v="b")]}, {"text": "ok"}])
    rt.register_agent("echo", "Echoes.", lambda v: v)
    result = rt.run(event(), timeout=60)
    tasks = rt.orchestration(result.orchestration_id).tasks
    assert [(t.input["v"], t.state) for t in tasks] == [("a", TaskState.SUCCEEDED), ("b", TaskState.SUCCEEDED)]
    assert [r["content"][0]["text"] for r in tool_results(rt, result.orchestration_id, 1)] == ['"a"', '"b"']


def test_failing_task_is_retried_to_success(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("flaky")]}, {"text": "ok"}])
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("upstream busy")
        return "finally"

    rt.register_agent("flaky", "Sometimes fails.", flaky)
    result = rt.run(event(), timeout=60)
    (task,) = rt.orchestration(result.orchestration_id).tasks
    assert result.ok and len(attempts) == 3
    assert task.state is TaskState.SUCCEEDED and task.attempt == 3
    assert [a.error.type for a in task.attempts if a.error] == ["ConnectionError", "ConnectionError"]
    assert tool_results(rt, result.orchestration_id, 1)[0]["status"] == "success"
    stats = rt.backends.registry.active("flaky").stats
    assert (stats.invocations, stats.succeeded, stats.failed) == (3, 1, 2)


def test_task_that_always_fails_is_reported_to_the_model(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("broken")]}, {"text": "could not do it"}])

    def broken() -> None:
        raise RuntimeError("the fryer is broken")

    rt.register_agent("broken", "Always fails.", broken, max_attempts=2)
    result = rt.run(event(), timeout=60)
    (answer,) = tool_results(rt, result.orchestration_id, 1)
    assert result.ok and result.output == "could not do it"
    assert answer["status"] == "error"
    assert "failed after 2 attempt(s): RuntimeError: the fryer is broken" in answer["content"][0]["text"]


def test_timeout(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("slow")]}, {"text": "too slow"}])
    release = threading.Event()
    rt.register_agent("slow", "Takes its time.", lambda: release.wait(30), timeout_seconds=0.3, max_attempts=1)
    result = rt.run(event(), timeout=60)
    release.set()
    (task,) = rt.orchestration(result.orchestration_id).tasks
    assert result.ok and task.state is TaskState.TIMED_OUT
    assert (
        "timed_out after 1 attempt(s): Timeout" in tool_results(rt, result.orchestration_id, 1)[0]["content"][0]["text"]
    )


def test_sandboxed_agent_from_a_module(runtime: RuntimeFactory, tmp_path: Any) -> None:
    module = tmp_path / "triple.py"
    module.write_text("from wrapper import sdk\n\ndef handler(n):\n    sdk.note('last', n)\n    return n * 3\n")
    rt = runtime([{"tool_calls": [call("triple", n=5)]}, {"text": "15"}])
    manifest = rt.register_agent(
        "triple", "Triples.", module, input_schema={"type": "object", "properties": {"n": {"type": "integer"}}}
    )
    assert manifest.isolation == "sandbox"
    result = rt.run(event(), timeout=60)
    view = rt.orchestration(result.orchestration_id)
    assert result.ok and view.tasks[0].result is not None and view.tasks[0].result.output == 15
    assert [(n.key, n.value) for n in view.notes] == [("last", 5)]


# ---------------------------------------------------------------- budgets


def test_budget_max_waves(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("echo", v=1)]}, {"tool_calls": [call("echo", v=2)]}, {"text": "never"}])
    rt.register_agent("echo", "Echoes.", lambda v: v)
    result = rt.run(event(), budget=Budget(max_waves=1), timeout=60)
    assert result.status == "failed" and result.error == "budget exhausted: max_waves" and result.waves == 1


def test_budget_max_tasks(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("echo", v=i) for i in range(3)]}, {"text": "never"}])
    rt.register_agent("echo", "Echoes.", lambda v: v)
    result = rt.run(event(), budget=Budget(max_tasks=2), timeout=60)
    assert result.status == "failed" and result.error == "budget exhausted: max_tasks" and result.tasks == 0


def test_budget_max_fabrications(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("fabricate", capability="x"), call("fabricate", capability="y")]}])
    result = rt.run(event(), budget=Budget(max_fabrications=1), timeout=60)
    assert result.status == "failed" and result.error == "budget exhausted: max_fabrications"


def test_budget_max_tokens(runtime: RuntimeFactory) -> None:
    rt = runtime(
        [
            {"tool_calls": [call("echo", v=1)], "usage": {"input_tokens": 800, "output_tokens": 100}},
            {"text": "too expensive", "usage": {"input_tokens": 900, "output_tokens": 100}},
        ]
    )
    rt.register_agent("echo", "Echoes.", lambda v: v)
    result = rt.run(event(), budget=Budget(max_tokens=1500), timeout=60)
    assert result.status == "failed" and result.error == "budget exhausted: max_tokens" and result.tokens == 1900


def test_budget_deadline(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("slow")]}, {"text": "never"}])
    release = threading.Event()
    rt.register_agent("slow", "Takes its time.", lambda: release.wait(30), timeout_seconds=30)
    result = rt.run(event(), budget=Budget(timeout_seconds=1), timeout=60)
    release.set()
    assert result.status == "failed" and result.error == "budget exhausted: deadline passed"
    (task,) = rt.orchestration(result.orchestration_id).tasks
    assert task.state in (TaskState.CANCELLED, TaskState.TIMED_OUT)


# ---------------------------------------------------------------- bad model output


def test_invalid_model_output_fails_the_task_and_goes_on(runtime: RuntimeFactory) -> None:
    rt = runtime(
        [
            {
                "tool_calls": [
                    call("no_such_agent", x=1),
                    call("typed", n="not a number"),
                    call("typed", n=2),
                ]
            },
            {"text": "handled what I could"},
        ]
    )

    def typed(n: int) -> int:
        return n + 1

    rt.register_agent("typed", "Needs an integer.", typed)
    assert rt.backends.registry.active("typed").input_schema["properties"] == {"n": {"type": "integer"}}
    result = rt.run(event(), timeout=60)
    answers = tool_results(rt, result.orchestration_id, 1)
    assert result.ok and [a["status"] for a in answers] == ["error", "error", "success"]
    assert "UnknownTool" in answers[0]["content"][0]["text"] and "typed" in answers[0]["content"][0]["text"]
    assert "InvalidToolInput" in answers[1]["content"][0]["text"] and "n" in answers[1]["content"][0]["text"]


def test_wave_of_only_invalid_calls_continues(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("ghost")]}, {"text": "no such worker"}])
    result = rt.run(event(), timeout=60)
    assert result.ok and result.output == "no such worker"


def test_same_event_twice_is_one_orchestration(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "hello"}])
    first = rt.submit({**event(), "id": "evt-42"})
    again = rt.submit({**event(), "id": "evt-42"})
    assert first == again and rt.wait(first, timeout=30).ok


def test_extra_model_call_fails_loudly(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("echo", v=1)]}])
    rt.register_agent("echo", "Echoes.", lambda v: v)
    result = rt.run(event(), timeout=60)
    assert result.status == "failed" and "unexpected call" in (result.error or "")


def test_scripted_model_receives_agent_tool_specs(runtime: RuntimeFactory) -> None:
    model = ScriptedModel([{"text": "nothing to do"}])
    rt = runtime([])
    rt.coordinator.planner.model = model
    rt.register_agent("echo", "Echoes its input.", lambda v: v)
    assert rt.run(event(), timeout=30).ok
    assert model.requests[0].tool_names == ["echo", "fabricate"]


def test_garbage_tool_input_fails_that_task(runtime: RuntimeFactory) -> None:
    from tests.arbiter.test_planner import RawModel, tool

    rt = runtime([])
    rt.coordinator.planner.model = RawModel([*tool("echo", "t1", "{oops"), {"messageStop": {"stopReason": "tool_use"}}])
    rt.register_agent("echo", "Echoes.", lambda v: v)
    orchestration_id = rt.submit(event())
    # The model keeps sending garbage: every wave fails its task, and the wave budget ends the orchestration.
    result = rt.wait(orchestration_id, timeout=60)
    assert result.status == "failed" and result.error == "budget exhausted: max_waves"
    first = rt.orchestration(orchestration_id).tasks[0]
    assert first.result is not None and first.result.error is not None
    assert first.result.error.type == "InvalidToolInput" and "not valid JSON" in first.result.error.message


def test_durable_shared_queue(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("double", n=4)]}, {"text": "8"}], queue="sqlite")
    rt.register_agent("double", "Doubles a number.", lambda n: n * 2)
    assert rt.run(event(), timeout=60).ok
    assert rt.backends.queue.stats().visible == 0


def test_unknown_queue_kind(tmp_path: Any) -> None:
    import pytest

    from arbiter import LocalRuntime, UsageError

    with pytest.raises(UsageError, match="queue"):
        LocalRuntime(tmp_path, model=ScriptedModel([]), start=False, deployment=Deployment(queue="carrier-pigeon"))


def test_unknown_matching_kind(tmp_path: Any) -> None:
    import pytest

    from arbiter import LocalRuntime, UsageError

    with pytest.raises(UsageError, match="matching"):
        LocalRuntime(tmp_path, model=ScriptedModel([]), matching="telepathy", start=False)
