"""Errors that mean what they say: transient planner failures are retried, permanent ones fail with the reason, and
an outage of the registry is never "no such tool" nor a made-up timeout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from strands.types.exceptions import ModelThrottledException

from arbiter import Coordinator, EngineSettings, Planner, PlannerError
from arbiter._planner_retry import PlannerRetry
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.sweeper import Sweeper
from arbiter.testing import ScriptedModel
from blackboard import (
    AgentManifest,
    Backends,
    Budget,
    Event,
    OrchestrationStatus,
    StoreUnavailableError,
    TaskError,
    TaskResult,
    TaskState,
    memory_backends,
)
from tests.arbiter.conftest import event
from tests.conftest import ManualClock
from tests.flaky_model import FakeFailingModel
from tests.wrapper.test_model_errors import _client_error

ANSWER = [{"text": "done"}]
NO_WAIT = PlannerRetry(attempts=4, backoff_seconds=0)


def _coordinator(
    backends: Backends, model: Any, *, retry: PlannerRetry = NO_WAIT, raise_transient: bool = False, **kw: Any
) -> Coordinator:
    settings = EngineSettings(planner_retry=retry, raise_transient=raise_transient)
    return Coordinator(backends, Planner(model, SYSTEM_PROMPT), settings, **kw)


def _start(coordinator: Coordinator, budget: Budget | None = None) -> str:
    return coordinator.start(Event.parse(event()), budget).id


def test_the_planner_error_says_whether_it_is_transient() -> None:
    throttled = FakeFailingModel(ScriptedModel(ANSWER), ModelThrottledException("slow down"), failures=1)
    with pytest.raises(PlannerError) as transient:
        Planner(throttled, SYSTEM_PROMPT).plan([], [])
    refused = FakeFailingModel(ScriptedModel(ANSWER), _client_error("ValidationException", 400), failures=1)
    with pytest.raises(PlannerError) as permanent:
        Planner(refused, SYSTEM_PROMPT).plan([], [])
    assert transient.value.retryable and not permanent.value.retryable


def test_a_throttled_planner_is_retried_and_the_orchestration_completes() -> None:
    backends = memory_backends()
    model = FakeFailingModel(ScriptedModel(ANSWER), ModelThrottledException("slow down"), failures=3)
    orchestration_id = _start(_coordinator(backends, model))
    finished = backends.blackboard.get_orchestration(orchestration_id)
    assert finished.status is OrchestrationStatus.COMPLETED and finished.output == "done"
    assert model.calls == 4


def test_a_permanent_planner_error_fails_at_once_with_the_reason() -> None:
    backends = memory_backends()
    model = FakeFailingModel(ScriptedModel(ANSWER), _client_error("AccessDeniedException", 403), failures=1)
    orchestration_id = _start(_coordinator(backends, model))
    failed = backends.blackboard.get_orchestration(orchestration_id)
    assert failed.status is OrchestrationStatus.FAILED and "AccessDeniedException" in (failed.error or "")
    assert model.calls == 1


def test_a_transient_error_that_outlives_its_retries_fails_saying_so() -> None:
    backends = memory_backends()
    model = FakeFailingModel(ScriptedModel(ANSWER), ModelThrottledException("slow down"), failures=10)
    orchestration_id = _start(_coordinator(backends, model))
    failed = backends.blackboard.get_orchestration(orchestration_id)
    assert failed.status is OrchestrationStatus.FAILED and model.calls == 4
    assert "kept failing" in (failed.error or "") and "ModelThrottledException" in (failed.error or "")


def test_retries_stop_at_the_orchestrations_deadline() -> None:
    clock = ManualClock()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    backends = memory_backends()
    model = FakeFailingModel(ScriptedModel(ANSWER), ModelThrottledException("slow down"), failures=100)
    retry = PlannerRetry(attempts=100, backoff_seconds=4, max_backoff_seconds=8)
    coordinator = _coordinator(backends, model, retry=retry, clock=clock.now, sleep=sleep)
    orchestration_id = _start(coordinator, Budget(timeout_seconds=30))
    failed = backends.blackboard.get_orchestration(orchestration_id)
    assert failed.status is OrchestrationStatus.FAILED and 1 < model.calls < 100
    assert sum(waits) < 30  # no wait ran past the deadline


def test_with_raise_transient_the_failure_is_raised_and_a_redelivery_plans_again() -> None:
    backends = memory_backends()
    model = FakeFailingModel(ScriptedModel(ANSWER), ModelThrottledException("slow down"), failures=2)
    coordinator = _coordinator(backends, model, retry=PlannerRetry(attempts=2, backoff_seconds=0), raise_transient=True)
    incoming = Event.parse(event())
    with pytest.raises(PlannerError) as raised:
        coordinator.start(incoming)
    assert raised.value.retryable
    (waiting,) = backends.blackboard.list_orchestrations(None)
    assert waiting.status is OrchestrationStatus.RUNNING  # left for the platform's retry, not failed
    again = coordinator.start(incoming)  # the platform delivers the same event again
    assert again.id == waiting.id and again.status is OrchestrationStatus.COMPLETED and again.output == "done"


def test_a_registry_outage_is_not_an_unknown_tool() -> None:
    backends = memory_backends()
    script = [{"tool_calls": [{"name": "ghost", "input": {}}]}, *ANSWER]
    coordinator = _coordinator(backends, ScriptedModel(script))

    def unreachable(name: str) -> AgentManifest:
        raise StoreUnavailableError("the registry table is unreachable")

    backends.registry.active = unreachable  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailableError):
        _start(coordinator)
    (orchestration,) = backends.blackboard.list_orchestrations(None)
    assert backends.blackboard.list_tasks(orchestration.id) == []  # nothing was refused as "no tool named ghost"


def test_an_unknown_tool_is_still_refused_as_such() -> None:
    backends = memory_backends()
    script = [{"tool_calls": [{"name": "ghost", "input": {}}]}, *ANSWER]
    orchestration_id = _start(_coordinator(backends, ScriptedModel(script)))
    (task,) = backends.blackboard.list_tasks(orchestration_id)
    assert task.result is not None and task.result.error is not None and task.result.error.type == "UnknownTool"


def test_an_outage_reading_an_agents_timeout_is_raised_not_turned_into_60_seconds() -> None:
    backends = memory_backends()
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    backends.registry.put(AgentManifest(name="cook", version=1, description="Cooks.", code=code, timeout_seconds=5))
    script = [{"tool_calls": [{"name": "cook", "input": {}}]}, *ANSWER]
    coordinator = _coordinator(backends, ScriptedModel(script))
    orchestration_id = _start(coordinator)
    (task,) = backends.blackboard.list_tasks(orchestration_id)
    board = backends.blackboard
    board.claim(orchestration_id, task.task_id, 1)
    error = TaskError(type="Boom", message="boom", retryable=True)
    result = TaskResult(status=TaskState.FAILED, error=error, attempt=1, finished_at=task.created_at)
    board.complete(orchestration_id, task.task_id, 1, result, retry_at=task.created_at)
    failed = board.get_task(orchestration_id, task.task_id)

    def unreachable(name: str, version: int) -> AgentManifest:
        raise StoreUnavailableError("the registry table is unreachable")

    real_get = backends.registry.get
    backends.registry.get = unreachable  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailableError):
        coordinator.retry_due(failed)
    backends.registry.get = real_get  # type: ignore[method-assign]
    coordinator.retry_due(failed)
    retried = board.get_task(orchestration_id, task.task_id)
    assert retried.attempt == 2 and retried.deadline is not None
    # The deadline comes from the agent's 5 s (plus the queue grace), not from a made-up 60 s.
    grace = coordinator.settings.queue_grace_seconds
    assert retried.deadline - retried.updated_at <= timedelta(seconds=5 + grace + 1)


def test_a_transient_failure_in_one_orchestration_does_not_stop_the_sweep() -> None:
    backends = memory_backends()
    model = FakeFailingModel(ScriptedModel([*ANSWER, *ANSWER]), ModelThrottledException("slow down"), failures=2)
    retry = PlannerRetry(attempts=1, backoff_seconds=0)
    coordinator = _coordinator(backends, model, retry=retry, raise_transient=True)
    for n in (1, 2):
        with pytest.raises(PlannerError):
            coordinator.start(Event.parse(event(n=n)))
    ids = [o.id for o in backends.blackboard.list_orchestrations(None)]
    report = Sweeper(coordinator).sweep(resume=True)  # the model answers again
    assert report.orchestrations_resumed == 2
    statuses = {backends.blackboard.get_orchestration(i).status for i in ids}
    assert statuses == {OrchestrationStatus.COMPLETED}
