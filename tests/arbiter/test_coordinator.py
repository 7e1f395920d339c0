"""The coordinator on its own (memory backends, no runtime): behaviour that does not need workers."""

from __future__ import annotations

from arbiter import Coordinator, Planner
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.testing import ScriptedModel
from blackboard import Event, TaskState, memory_backends


def test_fabricate_without_a_fabricator_fails_that_task_clearly() -> None:
    backends = memory_backends()
    script = [{"tool_calls": [{"name": "fabricate", "input": {"capability": "juggle"}}]}, {"text": "cannot juggle"}]
    coordinator = Coordinator(backends, Planner(ScriptedModel(script), SYSTEM_PROMPT))
    orchestration = coordinator.start(Event.parse({"source": "s", "detail-type": "d", "detail": {}}))
    (task,) = backends.blackboard.list_tasks(orchestration.id)
    assert task.state is TaskState.FAILED and task.result is not None and task.result.error is not None
    assert task.result.error.type == "FabricatorUnavailable"
    finished = backends.blackboard.get_orchestration(orchestration.id)
    assert finished.status.value == "completed" and finished.output == "cannot juggle"
