"""A wave's dispatch carries the notes the coordinator already holds: none for a new orchestration, the ones read
with the last wave's results; read again only when this process noted something since (reflection)."""

from __future__ import annotations

from typing import Any

import pytest

from arbiter import Coordinator, Planner
from arbiter.coordinator import EngineSettings
from arbiter.prompts import SYSTEM_PROMPT
from arbiter.reflection import REFLECTION_SOURCE, ReflectionPolicy
from arbiter.testing import ScriptedModel
from blackboard import AgentManifest, Backends, Event, TaskError, TaskMessage, TaskResult, TaskState, memory_backends
from tests.arbiter.conftest import event

TWO_WAVES = [
    {"tool_calls": [{"name": "cook", "input": {}}]},
    {"tool_calls": [{"name": "fry", "input": {}}]},
    {"text": "served"},
]


def _coordinator(backends: Backends, settings: EngineSettings | None = None) -> Coordinator:
    code = backends.code_store.put(b"def handler(**kw):\n    return 'fries'\n")
    for name in ("cook", "fry"):
        backends.registry.put(AgentManifest(name=name, version=1, description=f"{name.title()}s.", code=code))
    return Coordinator(backends, Planner(ScriptedModel(TWO_WAVES), SYSTEM_PROMPT), settings)


def _counting_note_reads(monkeypatch: pytest.MonkeyPatch, backends: Backends) -> list[str]:
    reads: list[str] = []
    original = backends.blackboard.notes
    monkeypatch.setattr(backends.blackboard, "notes", lambda o: reads.append(o) or original(o))
    return reads


def _run(coordinator: Coordinator, backends: Backends, status: TaskState, note: tuple[str, Any] | None) -> TaskMessage:
    """Take the one dispatched message, run it as a worker would (its note, its result) and report it."""
    (received,) = backends.queue.receive(1)
    message = received.message
    board = backends.blackboard
    assert board.claim(message.orchestration_id, message.task_id, message.attempt).applied
    if note is not None:
        board.put_note(message.orchestration_id, note[0], note[1], author="cook")
    if status is TaskState.SUCCEEDED:
        result = TaskResult(status=status, output="fries")
    else:
        result = TaskResult(status=status, error=TaskError(type="RuntimeError", message="burnt", retryable=False))
    closes = board.complete(message.orchestration_id, message.task_id, message.attempt, result).closes_wave
    assert closes
    backends.queue.ack(received)
    coordinator.continue_orchestration(message.orchestration_id)
    return message


def test_the_first_wave_carries_no_notes_without_reading_them(monkeypatch: pytest.MonkeyPatch) -> None:
    backends = memory_backends()
    coordinator = _coordinator(backends)
    reads = _counting_note_reads(monkeypatch, backends)
    orchestration = coordinator.start(Event.parse(event()))
    (received,) = backends.queue.receive(1)
    assert received.message.notes == [] and reads == []
    assert received.message.orchestration_id == orchestration.id


def test_the_next_wave_carries_the_notes_read_with_the_results(monkeypatch: pytest.MonkeyPatch) -> None:
    backends = memory_backends()
    coordinator = _coordinator(backends)
    orchestration = coordinator.start(Event.parse(event()))
    reads = _counting_note_reads(monkeypatch, backends)
    _run(coordinator, backends, TaskState.SUCCEEDED, ("stock", {"fries": 3}))
    assert reads == [orchestration.id]  # once, with the results, for both the planner and the dispatch
    (received,) = backends.queue.receive(1)
    assert [(n.key, n.value, n.version) for n in received.message.notes or []] == [("stock", {"fries": 3}, 1)]


def test_a_quarantine_noted_by_reflection_is_read_again_for_the_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    backends = memory_backends()
    reflection = ReflectionPolicy(min_invocations=1, max_failure_rate=0.5, refabricate="off")
    coordinator = _coordinator(backends, EngineSettings(reflection=reflection))
    orchestration = coordinator.start(Event.parse(event()))
    reads = _counting_note_reads(monkeypatch, backends)
    _run(coordinator, backends, TaskState.FAILED, None)
    assert backends.registry.get("cook", 1).state.value == "quarantined"
    assert reads == [orchestration.id, orchestration.id]  # with the results, then for the dispatch after the note
    (received,) = backends.queue.receive(1)
    assert received.message.agent.name == "fry"
    assert [n.author for n in received.message.notes or []] == [REFLECTION_SOURCE]
