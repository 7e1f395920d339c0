"""Trusted agents run only as the callable registered in this process, never from their stored source; a runtime given
its agents up front resumes a crashed orchestration with them registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arbiter import AgentDefinition, LocalRuntime, UsageError
from arbiter.testing import ScriptedModel
from blackboard import TaskState
from tests.arbiter.conftest import FAST, event
from wrapper import SandboxPool

ANSWER = [{"text": "The answer is 42."}]


def _crash_after_dispatch(home: Path, pool: SandboxPool) -> str:
    """Plan a wave for the trusted agent ``double`` and stop before any worker ran it (its message is lost)."""
    turns: list[dict[str, Any]] = [{"tool_calls": [{"name": "double", "input": {"n": 21}}]}, *ANSWER]
    first = LocalRuntime(home, model=ScriptedModel(turns), settings=FAST, sandbox=pool, start=False)
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
        tmp_path / "home", model=ScriptedModel(ANSWER), settings=FAST, sandbox=pool, sweep_interval=0.1, agents=agents
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
        tmp_path / "home", model=ScriptedModel(ANSWER), settings=FAST, sandbox=pool, sweep_interval=0.1
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
        tmp_path / "home", model=ScriptedModel(turns), settings=FAST, sandbox=pool, sweep_interval=0.1, agents=agents
    ) as runtime:
        module.write_text("def handler(n):\n    raise AssertionError('the file is not read again')\n")
        result = runtime.run(event(), timeout=60)
        (task,) = runtime.orchestration(result.orchestration_id).tasks
    assert result.ok and task.result is not None and task.result.output == 8


def test_an_async_handler_is_refused_naming_the_contract(tmp_path: Path, pool: SandboxPool) -> None:
    async def answer(question: str) -> str:
        return question

    runtime = LocalRuntime(tmp_path / "home", model=ScriptedModel(ANSWER), sandbox=pool, start=False)
    try:
        with pytest.raises(UsageError, match=r"answer: the handler is an async def; a worker is a plain def handler"):
            runtime.register_agent("answer", "Answers.", answer)
    finally:
        runtime.close()
