"""Small builders of valid records for the tests."""

from __future__ import annotations

from typing import Any

from blackboard import (
    AgentManifest,
    AgentRef,
    Blackboard,
    CodeRef,
    Event,
    Orchestration,
    Task,
    TaskError,
    TaskResult,
    TaskState,
)
from blackboard.ports.code_store import sha256_hex


def event(event_id: str | None = None, **detail: Any) -> Event:
    data: dict[str, Any] = {"source": "meal.request", "detail-type": "Order-Placed", "detail": detail or {"n": 1}}
    if event_id is not None:
        data["id"] = event_id
    return Event.parse(data)


def started(board: Blackboard, event_id: str | None = None) -> Orchestration:
    return board.create_orchestration(Orchestration(event=event(event_id))).record


def tasks_for(orchestration: Orchestration, count: int, *, max_attempts: int = 3, agent: str = "cook") -> list[Task]:
    wave = orchestration.wave + 1
    return [
        Task(
            orchestration_id=orchestration.id,
            task_id=f"w{wave}-t{i}",
            wave=wave,
            agent=AgentRef(name=agent, version=1),
            input={"i": i},
            max_attempts=max_attempts,
        )
        for i in range(count)
    ]


def with_wave(board: Blackboard, count: int, *, max_attempts: int = 3) -> tuple[Orchestration, list[Task]]:
    """An orchestration with one wave of ``count`` pending tasks."""
    orchestration = started(board)
    tasks = tasks_for(orchestration, count, max_attempts=max_attempts)
    applied = board.add_wave(orchestration, tasks)
    assert applied.applied
    return applied.record, tasks


def ok(output: Any = "done") -> TaskResult:
    return TaskResult(status=TaskState.SUCCEEDED, output=output, duration_ms=1.5)


def failed(message: str = "boom", *, retryable: bool = True) -> TaskResult:
    return TaskResult(
        status=TaskState.FAILED, error=TaskError(type="RuntimeError", message=message, retryable=retryable)
    )


def timed_out() -> TaskResult:
    return TaskResult(status=TaskState.TIMED_OUT, error=TaskError(type="Timeout", message="deadline passed"))


def manifest(
    name: str = "burger_cook", version: int = 1, code: bytes = b"def handler(**kw):\n    return kw\n"
) -> AgentManifest:
    return AgentManifest(
        name=name,
        version=version,
        description=f"{name} makes things",
        input_schema={"type": "object", "properties": {"item": {"type": "string"}}, "required": ["item"]},
        code=CodeRef(sha256=sha256_hex(code), key=sha256_hex(code)),
    )
