"""Typed updates of a running orchestration, as the runtime's writes happen (no polling).

:meth:`arbiter.LocalRuntime.stream` yields them; the CLI's live view draws them. They come from the runtime's own
blackboard (a :class:`~blackboard.ports.BlackboardObserver`), so they are told in the order the writes applied, in
the writer's thread, and handed to the consumer through a queue. A ``fabricate`` task is told as a fabrication
(:class:`FabricationStarted`, :class:`FabricationPublished`, :class:`FabricationFailed`), every other task as a task.
What an ``arbiter worker`` process does on the same home is seen when the runtime records it (its completions), not
when the worker claims a task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blackboard import Note, Orchestration, Task, TaskState

__all__ = [
    "FabricationFailed",
    "FabricationPublished",
    "FabricationStarted",
    "NoteWritten",
    "OrchestrationFinished",
    "PlannedTask",
    "RunResult",
    "TaskFinished",
    "TaskRetried",
    "TaskStarted",
    "Update",
    "WavePlanned",
    "result_of",
]

#: The built-in capability whose tasks are told as fabrications.
FABRICATE = "fabricate"
_FINISHED = (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.TIMED_OUT, TaskState.CANCELLED)


@dataclass(frozen=True)
class RunResult:
    """How an orchestration ended."""

    orchestration_id: str
    status: str
    output: Any
    error: str | None
    waves: int
    tasks: int
    tokens: int

    @property
    def ok(self) -> bool:
        """Whether it completed."""
        return self.status == "completed"


def result_of(orchestration: Orchestration) -> RunResult:
    """The :class:`RunResult` of a finished orchestration record."""
    return RunResult(
        orchestration_id=orchestration.id,
        status=orchestration.status.value,
        output=orchestration.output,
        error=orchestration.error,
        waves=orchestration.usage.waves,
        tasks=orchestration.usage.tasks,
        tokens=orchestration.usage.tokens,
    )


@dataclass(frozen=True)
class Update:
    """Base of every update: which orchestration it is about."""

    orchestration_id: str


@dataclass(frozen=True)
class PlannedTask:
    """One task of a planned wave: its id, the agent (``name@version``) and the input the planner gave."""

    task_id: str
    agent: str
    input: dict[str, Any]


@dataclass(frozen=True)
class WavePlanned(Update):
    """The planner asked for a wave of tasks (stored ``pending``); ``tokens`` and ``fabrications`` are the totals."""

    wave: int
    tasks: tuple[PlannedTask, ...]
    tokens: int
    fabrications: int


@dataclass(frozen=True)
class TaskStarted(Update):
    """A worker claimed an attempt of a task and runs it."""

    task_id: str
    agent: str
    wave: int
    attempt: int


@dataclass(frozen=True)
class TaskFinished(Update):
    """An attempt ended: ``status`` is ``succeeded``, ``failed``, ``timed_out`` or ``cancelled``.

    ``output`` is ``None`` for an output kept in the payload store (read it with ``rt.orchestration(id)``);
    ``retry``: another attempt is scheduled (a :class:`TaskRetried` follows when it starts).
    """

    task_id: str
    agent: str
    wave: int
    attempt: int
    status: str
    output: Any
    error: str | None
    retry: bool


@dataclass(frozen=True)
class TaskRetried(Update):
    """A failed task's next attempt (``attempt``) is on its way (pending again)."""

    task_id: str
    agent: str
    wave: int
    attempt: int


@dataclass(frozen=True)
class FabricationStarted(Update):
    """The Fabricator took a ``fabricate`` task: it writes (or reuses) a worker for ``capability``."""

    task_id: str
    capability: str
    attempt: int


@dataclass(frozen=True)
class FabricationPublished(Update):
    """A worker for the fabricate task is active: ``agent`` at ``version`` (``reused``: an existing one passed)."""

    task_id: str
    agent: str | None
    version: int | None
    reused: bool


@dataclass(frozen=True)
class FabricationFailed(Update):
    """No worker was published for the fabricate task (``retry``: another attempt is scheduled)."""

    task_id: str
    error: str | None
    retry: bool


@dataclass(frozen=True)
class NoteWritten(Update):
    """An agent wrote a note on the orchestration's blackboard."""

    key: str
    value: Any
    author: str
    version: int


@dataclass(frozen=True)
class OrchestrationFinished(Update):
    """The orchestration ended (the last update of a stream)."""

    result: RunResult


def _agent(task: Task) -> str:
    return f"{task.agent.name}@{task.agent.version}"


def wave_planned(orchestration: Orchestration, tasks: Sequence[Task]) -> WavePlanned:
    """The update of a stored wave."""
    planned = tuple(PlannedTask(t.task_id, _agent(t), dict(t.input)) for t in tasks)
    usage = orchestration.usage
    return WavePlanned(orchestration.id, orchestration.wave, planned, usage.tokens, usage.fabrications)


def task_updates(before: TaskState, task: Task) -> list[Update]:
    """The updates of one applied task change (none for a dispatch or a lease renewal)."""
    if before is task.state:
        return []
    fabrication = task.agent.name == FABRICATE
    oid = task.orchestration_id
    if task.state is TaskState.RUNNING:
        if fabrication:
            return [FabricationStarted(oid, task.task_id, str(task.input.get("capability", "")), task.attempt)]
        return [TaskStarted(oid, task.task_id, _agent(task), task.wave, task.attempt)]
    if task.state is TaskState.PENDING and task.attempt > 1:
        return [TaskRetried(oid, task.task_id, _agent(task), task.wave, task.attempt)]
    if task.state not in _FINISHED or task.result is None:
        return []
    result = task.result
    error = None if result.error is None else f"{result.error.type}: {result.error.message}"
    if fabrication:
        output = result.output if isinstance(result.output, dict) else {}
        if task.state is TaskState.SUCCEEDED:
            agent, version = output.get("agent"), output.get("version")
            return [
                FabricationPublished(
                    oid,
                    task.task_id,
                    agent if isinstance(agent, str) else None,
                    version if isinstance(version, int) else None,
                    bool(output.get("reused")),
                )
            ]
        return [FabricationFailed(oid, task.task_id, error, task.retry_at is not None)]
    return [
        TaskFinished(
            oid,
            task.task_id,
            _agent(task),
            task.wave,
            task.attempt,
            task.state.value,
            result.output,
            error,
            task.retry_at is not None,
        )
    ]


def note_written(note: Note) -> NoteWritten:
    """The update of a written note."""
    return NoteWritten(note.orchestration_id, note.key, note.value, note.author, note.version)
