"""Trusted agents run only as the callable registered in this process, never from their stored source; a runtime given
its agents up front resumes a crashed orchestration with them registered."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from arbiter import AgentDefinition, LocalRuntime, ReflectionPolicy, UsageError
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from blackboard import AgentState, TaskState
from tests.arbiter.conftest import FAST, event
from tests.wrapper.test_sandbox import wait_until
from wrapper import SandboxPool, TrustedCalls

ANSWER = [{"text": "The answer is 42."}]


def _crash_after_dispatch(home: Path, pool: SandboxPool) -> str:
    """Plan a wave for the trusted agent ``double`` and stop before any worker ran it (its message is lost)."""
    turns: list[dict[str, Any]] = [{"tool_calls": [{"name": "double", "input": {"n": 21}}]}, *ANSWER]
    first = LocalRuntime(
        home, model=ScriptedModel(turns), settings=FAST, start=False, deployment=Deployment(sandbox=pool)
    )
    first.register_agent("double", "Doubles a number.", lambda n: n * 2)
    orchestration_id = first.submit(event())
    (task,) = first.orchestration(orchestration_id).tasks
    assert task.state is TaskState.DISPATCHED
    first.close()
    return orchestration_id


def test_a_restart_resumes_with_the_agents_given_up_front(tmp_path: Path, pool: SandboxPool) -> None:
    orchestration_id = _crash_after_dispatch(tmp_path / "home", pool)
    agents = [AgentDefinition("double", "Doubles a number.", lambda n: n * 2)]
    with LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel(ANSWER),
        settings=FAST,
        agents=agents,
        deployment=Deployment(sandbox=pool, sweep_interval=0.1),
    ) as second:
        result = second.wait(orchestration_id, timeout=60)
        (task,) = second.orchestration(orchestration_id).tasks
    assert result.ok and result.output == "The answer is 42."
    assert (task.state, task.attempt) == (TaskState.SUCCEEDED, 1) and task.result is not None
    assert task.result.output == 42


def test_without_its_callable_a_trusted_task_fails_once_naming_the_agent(tmp_path: Path, pool: SandboxPool) -> None:
    # Its recorded source is a line of this file with a lambda in it: running that text is what must never happen.
    orchestration_id = _crash_after_dispatch(tmp_path / "home", pool)
    with LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel(ANSWER),
        settings=FAST,
        deployment=Deployment(sandbox=pool, sweep_interval=0.1),
    ) as second:
        second.wait(orchestration_id, timeout=60)
        (task,) = second.orchestration(orchestration_id).tasks
    assert (task.state, task.attempt) == (TaskState.FAILED, 1) and task.result is not None
    error = task.result.error
    assert error is not None and error.type == "TrustedHandlerUnavailable" and not error.retryable
    assert "double@1" in error.message and "LocalRuntime(agents=[...])" in error.message


def test_a_trusted_module_file_is_imported_at_registration(tmp_path: Path, pool: SandboxPool) -> None:
    module = tmp_path / "double.py"
    module.write_text("def handler(n):\n    return n * 2\n")
    turns: list[dict[str, Any]] = [{"tool_calls": [{"name": "double", "input": {"n": 4}}]}, {"text": "8"}]
    agents = [AgentDefinition("double", "Doubles a number.", module, input_schema={"type": "object"}, trusted=True)]
    with LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel(turns),
        settings=FAST,
        agents=agents,
        deployment=Deployment(sandbox=pool, sweep_interval=0.1),
    ) as runtime:
        module.write_text("def handler(n):\n    raise AssertionError('the file is not read again')\n")
        result = runtime.run(event(), timeout=60)
        (task,) = runtime.orchestration(result.orchestration_id).tasks
    assert result.ok and task.result is not None and task.result.output == 8


def test_an_async_handler_is_refused_naming_the_contract(tmp_path: Path, pool: SandboxPool) -> None:
    async def answer(question: str) -> str:
        return question

    runtime = LocalRuntime(
        tmp_path / "home", model=ScriptedModel(ANSWER), start=False, deployment=Deployment(sandbox=pool)
    )
    try:
        with pytest.raises(UsageError, match=r"answer: the handler is an async def; a worker is a plain def handler"):
            runtime.register_agent("answer", "Answers.", answer)
    finally:
        runtime.close()


def test_close_returns_while_a_trusted_call_hangs(tmp_path: Path, pool: SandboxPool) -> None:
    running, release = threading.Event(), threading.Event()

    def hang() -> None:
        running.set()
        release.wait(600)

    turns: list[dict[str, Any]] = [{"tool_calls": [{"name": "hang", "input": {}}]}, *ANSWER]
    agents = [AgentDefinition("hang", "Hangs.", hang, input_schema={"type": "object"}, timeout_seconds=600)]
    runtime = LocalRuntime(
        tmp_path / "home", model=ScriptedModel(turns), settings=FAST, agents=agents, deployment=Deployment(sandbox=pool)
    )
    try:
        runtime.submit(event())
        assert running.wait(60)
        closing = threading.Thread(target=runtime.close, daemon=True)
        closing.start()
        closing.join(30)  # the call's own timeout is 600 s: waiting for it is what must not happen
        assert not closing.is_alive()
    finally:
        release.set()
        assert wait_until(lambda: not any(t.name.startswith("arbiter-trusted-") for t in threading.enumerate()), 30)


def test_timeouts_for_want_of_a_free_slot_do_not_quarantine_the_agent(tmp_path: Path, pool: SandboxPool) -> None:
    release = threading.Event()
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "hang_a", "input": {}}, {"name": "hang_b", "input": {}}]},
        {"tool_calls": [{"name": "healthy", "input": {}}]},
        *ANSWER,
    ]
    schema = {"type": "object"}
    agents = [
        AgentDefinition("hang_a", "Hangs.", lambda: release.wait(600), schema, timeout_seconds=0.2, max_attempts=1),
        AgentDefinition("hang_b", "Hangs.", lambda: release.wait(600), schema, timeout_seconds=0.2, max_attempts=1),
        AgentDefinition("healthy", "Answers.", lambda: "fine", input_schema=schema, timeout_seconds=0.2),
    ]
    try:
        with LocalRuntime(
            tmp_path / "home",
            model=ScriptedModel(turns),
            settings=replace(FAST, reflection=ReflectionPolicy(min_invocations=1, refabricate="off")),
            agents=agents,
            deployment=Deployment(
                sandbox=pool, sweep_interval=0.1, trusted_calls=TrustedCalls(per_agent=1, max_calls=2)
            ),
        ) as runtime:
            result = runtime.run(event(), timeout=120)
            registry = runtime.backends.registry
            healthy = registry.active("healthy")
            hung = registry.get("hang_a", 1)
            (task,) = [t for t in runtime.orchestration(result.orchestration_id).tasks if t.agent.name == "healthy"]
    finally:
        release.set()
        assert wait_until(lambda: not any(t.name.startswith("arbiter-trusted-") for t in threading.enumerate()), 30)
    assert result.ok
    assert task.state is TaskState.TIMED_OUT and task.result is not None and task.result.error is not None
    assert (task.result.error.type, task.result.error.agent_fault) == ("TrustedCallsBusy", False)
    assert healthy.state is AgentState.ACTIVE and healthy.stats.invocations == 0
    assert hung.state is AgentState.QUARANTINED  # its own timeout counts
