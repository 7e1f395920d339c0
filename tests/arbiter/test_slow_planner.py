"""A planning call that takes longer than the watchdog's stall time is not planned a second time meanwhile."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator
from typing import Any

from arbiter.coordinator import Coordinator
from arbiter.planner import Planner
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.sweeper import Sweeper
from blackboard import Backends, Event
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


def test_watchdog_does_not_plan_an_orchestration_being_planned(backends: Backends) -> None:
    model = SlowModel([{"text": "done"}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT))
    event = Event.parse({"source": "t", "detail-type": "T", "detail": {}})
    starter = threading.Thread(target=coordinator.start, args=(event,))
    starter.start()
    assert model.entered.wait(10)
    # Even a sweep that treats everything as stalled (as after a restart) leaves it alone while the model thinks.
    report = Sweeper(coordinator, stalled_after=0).sweep(resume=True)
    model.release.set()
    starter.join(10)
    assert report.orchestrations_resumed == 0
    assert model.calls == 1  # a second plan would have found the script exhausted
    (orchestration,) = backends.blackboard.list_orchestrations()
    assert orchestration.output == "done"
