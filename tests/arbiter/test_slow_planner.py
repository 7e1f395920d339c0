"""A planning call that takes longer than the watchdog's stall time is not planned a second time meanwhile."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import pytest

from arbiter.coordinator import Coordinator, EngineSettings
from arbiter.planner import Planner
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.sweeper import Sweeper
from blackboard import Backends, Event, Orchestration
from wrapper.testing import ScriptedModel


class SlowModel(ScriptedModel):
    """A ScriptedModel whose first call waits until the test lets it go."""

    def __init__(self, turns: list[dict[str, Any]]) -> None:
        super().__init__(turns)
        self.entered = threading.Event()
        self.release = threading.Event()

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        self.entered.set()
        assert self.release.wait(10)
        async for event in super().stream(*args, **kwargs):
            yield event


EVENT = {"source": "t", "detail-type": "T", "detail": {}}


def planning_in_thread(coordinator: Coordinator, model: SlowModel) -> threading.Thread:
    """Start an orchestration on a thread of its own; return once its model call has begun (and waits)."""
    starter = threading.Thread(target=coordinator.start, args=(Event.parse(EVENT),))
    starter.start()
    assert model.entered.wait(10)
    return starter


def test_watchdog_does_not_plan_an_orchestration_being_planned(backends: Backends) -> None:
    model = SlowModel([{"text": "done"}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT))
    starter = planning_in_thread(coordinator, model)
    # Even a sweep that treats everything as stalled (as after a restart) leaves it alone while the model thinks.
    report = Sweeper(coordinator, stalled_after=0).sweep(resume=True)
    model.release.set()
    starter.join(10)
    assert report.orchestrations_resumed == 0
    assert model.calls == 1  # a second plan would have found the script exhausted
    (orchestration,) = backends.blackboard.list_orchestrations()
    assert orchestration.output == "done"


def test_a_turn_longer_than_its_lease_is_not_planned_again_by_another_coordinator(backends: Backends) -> None:
    model = SlowModel([{"text": "done"}])
    other = ScriptedModel([{"text": "planned twice"}])
    # Another coordinator (as in another process: it does not share this one's in-memory view) and a short lease
    # that must be renewed several times while the model thinks.
    planning = Coordinator(backends, Planner(model, SYSTEM_PROMPT), EngineSettings(lease_seconds=1.0))
    watching = Coordinator(backends, Planner(other, SYSTEM_PROMPT))
    starter = planning_in_thread(planning, model)
    (orchestration,) = backends.blackboard.list_orchestrations()
    assert orchestration.planner is not None and orchestration.planning_expires_at is not None
    # Past a whole lease period: the lease is still held because it is renewed.
    assert _wait(lambda: backends.blackboard.get_orchestration(orchestration.id).version >= orchestration.version + 3)
    reports = [Sweeper(watching, stalled_after=0).sweep(resume=True) for _ in range(3)]
    model.release.set()
    starter.join(10)
    assert [r.orchestrations_resumed for r in reports] == [0, 0, 0]
    assert other.calls == 0
    finished = backends.blackboard.get_orchestration(orchestration.id)
    assert finished.output == "done"


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_a_turn_is_stored_on_the_version_its_lease_wrote_without_reading_it_again(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    get = backends.blackboard.get_orchestration

    def counted(orchestration_id: str) -> Orchestration:
        reads.append(inspect.stack()[1].function)
        return get(orchestration_id)

    monkeypatch.setattr(backends.blackboard, "get_orchestration", counted)
    coordinator = Coordinator(backends, Planner(ScriptedModel([{"text": "done"}]), SYSTEM_PROMPT))
    orchestration = coordinator.start(Event.parse(EVENT))
    assert orchestration.output == "done"
    assert "after_turn" not in reads


def test_a_turn_whose_orchestration_was_written_meanwhile_is_dropped(backends: Backends) -> None:
    model = SlowModel([{"text": "too late"}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT))
    starter = planning_in_thread(coordinator, model)
    (orchestration,) = backends.blackboard.list_orchestrations()
    # Another turn took the lease meanwhile (as after an expiry, in another process).
    other = backends.blackboard.update_orchestration(orchestration, planner="elsewhere#1")
    assert other.applied
    model.release.set()
    starter.join(10)
    after = backends.blackboard.get_orchestration(orchestration.id)
    assert after.output is None and after.planner == "elsewhere#1" and not after.finished
