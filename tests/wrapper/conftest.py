"""Fixtures for the wrapper tests: backends with registered agents, and task messages for a fresh wave."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from blackboard import (
    AgentManifest,
    AgentRef,
    Backends,
    CompletionEvent,
    Event,
    Orchestration,
    Task,
    TaskMessage,
    local_backends,
)


class Harness:
    """Backends plus helpers to register agents, start waves and collect completion events."""

    def __init__(self, backends: Backends) -> None:
        self.backends = backends
        self.completions: list[CompletionEvent] = []
        backends.bus.subscribe(
            {"source": ["arbiter.wrapper"], "detail-type": ["task.completed"]},
            lambda event: self.completions.append(CompletionEvent.parse(event.detail)),
        )

    def register(
        self,
        name: str,
        code: str,
        *,
        schema: dict[str, Any] | None = None,
        isolation: str = "sandbox",
        timeout: float = 20.0,
        max_attempts: int | None = None,
        output_schema: dict[str, Any] | None = None,
    ) -> AgentManifest:
        ref = self.backends.code_store.put(code.encode())
        manifest = AgentManifest(
            name=name,
            version=self.backends.registry.next_version(name),
            description=f"{name} for tests",
            input_schema=schema or {"type": "object"},
            output_schema=output_schema,
            code=ref,
            isolation=isolation,  # type: ignore[arg-type]
            timeout_seconds=timeout,
            max_attempts=max_attempts,
        )
        return self.backends.registry.put(manifest).record

    def wave(
        self,
        *calls: tuple[AgentManifest, dict[str, Any]],
        max_attempts: int = 3,
        deadlines: Sequence[datetime | None] | None = None,
    ) -> list[TaskMessage]:
        """Tasks stored (with ``deadlines``, as the coordinator stores them) and dispatched; their messages."""
        board = self.backends.blackboard
        deadlines = [None] * len(calls) if deadlines is None else deadlines
        event = Event.parse({"source": "test", "detail-type": "run", "detail": {}})
        orchestration = board.create_orchestration(Orchestration(event=event)).record
        tasks = [
            Task(
                orchestration_id=orchestration.id,
                task_id=f"tooluse_{i}",
                wave=1,
                agent=manifest.ref,
                input=data,
                max_attempts=max_attempts,
                deadline=deadline,
            )
            for i, ((manifest, data), deadline) in enumerate(zip(calls, deadlines, strict=True))
        ]
        board.add_wave(orchestration, tasks)
        board.mark_dispatched(tasks)
        return [
            TaskMessage(
                orchestration_id=t.orchestration_id,
                task_id=t.task_id,
                attempt=t.attempt,
                agent=AgentRef(name=t.agent.name, version=t.agent.version),
                input=t.input,
                deadline=t.deadline,
            )
            for t in tasks
        ]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    backends = local_backends(tmp_path / "home")
    yield Harness(backends)
    backends.close()
