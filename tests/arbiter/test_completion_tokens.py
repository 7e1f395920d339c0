"""A completion is accepted only with its task's token: a forged event with the right source and ids records nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from arbiter import Coordinator, LocalRuntime, Planner
from arbiter.config import Deployment
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.testing import ScriptedModel
from blackboard import AgentManifest, Backends, CompletionEvent, Event, Task, TaskResult, TaskState, memory_backends
from blackboard.messages import new_completion_token
from tests.arbiter.conftest import FAST, event
from wrapper import SandboxPool

CALL_COOK = [{"tool_calls": [{"name": "cook", "input": {}}]}, {"text": "served"}]


def _running_task(backends: Backends) -> tuple[Coordinator, Task]:
    """A coordinator whose one task was dispatched and claimed by a worker (``running``)."""
    code = backends.code_store.put(b"def handler(**kw):\n    return 'fries'\n")
    backends.registry.put(AgentManifest(name="cook", version=1, description="Cooks.", code=code))
    coordinator = Coordinator(backends, Planner(ScriptedModel(CALL_COOK), SYSTEM_PROMPT))
    orchestration = coordinator.start(Event.parse(event()))
    (task,) = backends.blackboard.list_tasks(orchestration.id)
    assert backends.blackboard.claim(orchestration.id, task.task_id, 1).applied
    return coordinator, backends.blackboard.get_task(orchestration.id, task.task_id)


def _forged(task: Task, **changes: Any) -> CompletionEvent:
    detail = {
        "orchestration_id": task.orchestration_id,
        "task_id": task.task_id,
        "attempt": task.attempt,
        "agent": task.agent.model_dump(),
        "status": "succeeded",
        "output": "the attacker's result",
        **changes,
    }
    return CompletionEvent.parse(detail)


def test_the_dispatched_message_carries_the_token_stored_with_the_task() -> None:
    backends = memory_backends()
    _, task = _running_task(backends)
    (received,) = backends.queue.receive(1)
    message = received.message
    assert task.token is not None and message.token == task.token
    assert message.to_dict()["schema"] == "arbiter.task/2"


@pytest.mark.parametrize(
    "changes",
    [
        {},  # no token at all
        {"token": new_completion_token()},  # a well-formed token of another task
        {"schema": "arbiter.completion/1"},  # the first schema version, which had no token
        {"closes_wave": True, "recorded": True},  # claims the wrapper recorded it and closed the wave
    ],
    ids=["no-token", "wrong-token", "old-schema", "claims-recorded"],
)
def test_a_forged_completion_completes_nothing(changes: dict[str, Any]) -> None:
    backends = memory_backends()
    coordinator, task = _running_task(backends)
    assert coordinator.on_completion(_forged(task, **changes)) is False
    after = backends.blackboard.get_task(task.orchestration_id, task.task_id)
    assert after.state is TaskState.RUNNING and after.result is None
    assert coordinator.refused_completions == 1
    orchestration = backends.blackboard.get_orchestration(task.orchestration_id)
    assert orchestration.status.value == "running" and len(orchestration.conversation) == 2  # nothing planned


def test_a_completion_that_asks_for_nothing_is_acknowledged_without_a_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # The wrapper recorded it and it closes no wave: accepting it does nothing, so its token protects nothing and
    # the coordinator spends no read on it (one read per task on DynamoDB). A forged one changes nothing either.
    backends = memory_backends()
    coordinator, task = _running_task(backends)
    reads: list[str] = []
    original = backends.blackboard.get_task
    monkeypatch.setattr(backends.blackboard, "get_task", lambda o, t: reads.append(t) or original(o, t))
    assert coordinator.on_completion(_forged(task, recorded=True, token=new_completion_token())) is True
    assert reads == [] and coordinator.refused_completions == 0
    after = original(task.orchestration_id, task.task_id)
    assert after.state is TaskState.RUNNING and after.result is None
    orchestration = backends.blackboard.get_orchestration(task.orchestration_id)
    assert orchestration.status.value == "running" and len(orchestration.conversation) == 2


def test_a_completion_for_a_task_that_does_not_exist_is_refused() -> None:
    backends = memory_backends()
    coordinator, task = _running_task(backends)
    forged = _forged(task, task_id="no-such-task", token=task.token)
    assert coordinator.on_completion(forged) is False and coordinator.refused_completions == 1


def test_a_closing_completion_for_an_orchestration_that_does_not_exist_is_refused() -> None:
    backends = memory_backends()
    coordinator, task = _running_task(backends)
    forged = _forged(task, orchestration_id="no-such-orchestration", token=task.token, closes_wave=True, recorded=True)
    assert coordinator.on_completion(forged) is False and coordinator.refused_completions == 1


def test_a_recorded_closing_completion_reads_its_wave_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The wrapper recorded the result and closed the wave: the token check, the orchestration, the wave's tasks and
    # the notes for the next turn come from one read_wave (one Query on DynamoDB) and nothing is read again.
    backends = memory_backends()
    coordinator, task = _running_task(backends)
    board = backends.blackboard
    result = TaskResult.from_completion(_forged(task, output="fries", token=task.token))
    assert board.complete(task.orchestration_id, task.task_id, 1, result).closes_wave
    board.put_note(task.orchestration_id, "stock", {"fries": 0}, author="cook")
    reads: list[str] = []
    inside: list[str] = []  # the reads read_wave itself makes on this backend are its own

    def counted(name: str, original: Any) -> Any:
        def read(*args: Any, **kwargs: Any) -> Any:
            if not inside:
                reads.append(name)
            inside.append(name)
            try:
                return original(*args, **kwargs)
            finally:
                inside.pop()

        return read

    for name in ("get_task", "get_orchestration", "list_tasks", "notes", "read_wave"):
        monkeypatch.setattr(board, name, counted(name, getattr(board, name)))
    closing = _forged(task, output="fries", token=task.token, closes_wave=True, recorded=True)
    assert coordinator.on_completion(closing) is True
    assert reads == ["read_wave"]  # the answer's finish knows the closed wave left no task to cancel
    orchestration = board.get_orchestration(task.orchestration_id)
    assert orchestration.output == "served" and coordinator.refused_completions == 0
    results = orchestration.conversation[2]
    assert "fries" in str(results) and "stock" in str(results)  # the result and the note went to the planner


def test_the_completion_with_the_tasks_token_is_recorded() -> None:
    backends = memory_backends()
    coordinator, task = _running_task(backends)
    assert coordinator.on_completion(_forged(task, output="fries", token=task.token)) is True
    after = backends.blackboard.get_task(task.orchestration_id, task.task_id)
    assert after.state is TaskState.SUCCEEDED and after.result is not None and after.result.output == "fries"
    assert backends.blackboard.get_orchestration(task.orchestration_id).output == "served"
    assert coordinator.refused_completions == 0


def _wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.02)


def test_a_forged_completion_on_the_local_bus_does_not_complete_a_running_task(
    tmp_path: Path, pool: SandboxPool
) -> None:
    release = threading.Event()

    def cook() -> str:
        release.wait(30)
        return "fries"

    with LocalRuntime(
        tmp_path / "home", model=ScriptedModel(CALL_COOK), settings=FAST, deployment=Deployment(sandbox=pool)
    ) as rt:
        rt.register_agent("cook", "Cooks.", cook)
        orchestration_id = rt.submit(event())
        board = rt.backends.blackboard
        _wait_for(lambda: [t.state for t in board.list_tasks(orchestration_id)] == [TaskState.RUNNING])
        (task,) = board.list_tasks(orchestration_id)
        for changes in ({}, {"token": new_completion_token()}):
            rt.backends.bus.publish([_forged(task, **changes).to_event()])  # source arbiter.wrapper, right ids
        assert board.get_task(orchestration_id, task.task_id).state is TaskState.RUNNING
        assert rt.coordinator.refused_completions == 2
        release.set()
        result = rt.wait(orchestration_id, timeout=60)
    assert result.ok and result.output == "served"
    (done,) = rt.orchestration(orchestration_id).tasks
    assert done.result is not None and done.result.output == "fries"  # the real worker's result, not the forgery


def test_a_fabrication_request_carries_its_tasks_token() -> None:
    from blackboard import FabricationRequest

    backends = memory_backends()
    requests: list[FabricationRequest] = []
    script = [{"tool_calls": [{"name": "fabricate", "input": {"capability": "juggle"}}]}, {"text": "x"}]
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), SYSTEM_PROMPT), fabricate=requests.append)
    orchestration = coordinator.start(Event.parse(event()))
    (task,) = backends.blackboard.list_tasks(orchestration.id)
    (request,) = requests
    assert task.token is not None and request.token == task.token
    assert request.to_dict()["schema"] == "arbiter.fabrication/3"
