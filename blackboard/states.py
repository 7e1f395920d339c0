"""State machines of tasks, orchestrations and agents.

The tables below are the only place that says which state changes exist. The ports check every requested change
against them before touching storage: asking for a change that is not in a table is a programming error
(:class:`~blackboard.exceptions.InvalidTransitionError`); asking for one that is in the table but whose precondition no
longer holds (a duplicate, a stale attempt) is normal under concurrency and returns "not applied".
"""

from __future__ import annotations

from enum import StrEnum

from blackboard.exceptions import InvalidTransitionError

__all__ = [
    "AGENT_TRANSITIONS",
    "ORCHESTRATION_TRANSITIONS",
    "TASK_TRANSITIONS",
    "AgentOrigin",
    "AgentState",
    "OrchestrationStatus",
    "TaskState",
    "check_agent_transition",
    "check_orchestration_transition",
    "check_task_transition",
]


class TaskState(StrEnum):
    """Where a task is in its life."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class OrchestrationStatus(StrEnum):
    """Where an orchestration is in its life."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AgentState(StrEnum):
    """Lifecycle of one agent version in the registry."""

    CANDIDATE = "candidate"
    PENDING_APPROVAL = "pending_approval"
    ACTIVE = "active"
    QUARANTINED = "quarantined"
    RETIRED = "retired"


class AgentOrigin(StrEnum):
    """Who wrote an agent."""

    USER = "user"
    FABRICATOR = "fabricator"
    BUILTIN = "builtin"


_T = TaskState
TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # A claim may overtake "dispatched": the queue can deliver before the dispatcher has marked the task.
    _T.PENDING: frozenset({_T.DISPATCHED, _T.RUNNING, _T.SUCCEEDED, _T.FAILED, _T.TIMED_OUT, _T.CANCELLED}),
    _T.DISPATCHED: frozenset({_T.RUNNING, _T.SUCCEEDED, _T.FAILED, _T.TIMED_OUT, _T.CANCELLED}),
    _T.RUNNING: frozenset({_T.SUCCEEDED, _T.FAILED, _T.TIMED_OUT, _T.CANCELLED}),
    # Only a failed or timed-out attempt that has a retry scheduled leaves these states (to the next attempt).
    _T.FAILED: frozenset({_T.PENDING, _T.CANCELLED}),
    _T.TIMED_OUT: frozenset({_T.PENDING, _T.CANCELLED}),
    _T.SUCCEEDED: frozenset(),
    _T.CANCELLED: frozenset(),
}

_O = OrchestrationStatus
ORCHESTRATION_TRANSITIONS: dict[OrchestrationStatus, frozenset[OrchestrationStatus]] = {
    _O.RUNNING: frozenset({_O.RUNNING, _O.COMPLETED, _O.FAILED, _O.CANCELLED}),
    _O.COMPLETED: frozenset(),
    _O.FAILED: frozenset(),
    _O.CANCELLED: frozenset(),
}

_A = AgentState
AGENT_TRANSITIONS: dict[AgentState, frozenset[AgentState]] = {
    _A.CANDIDATE: frozenset({_A.PENDING_APPROVAL, _A.ACTIVE, _A.RETIRED}),
    _A.PENDING_APPROVAL: frozenset({_A.ACTIVE, _A.RETIRED}),
    _A.ACTIVE: frozenset({_A.QUARANTINED, _A.RETIRED}),
    _A.QUARANTINED: frozenset({_A.ACTIVE, _A.RETIRED}),
    # A rollback re-activates an earlier, retired version.
    _A.RETIRED: frozenset({_A.ACTIVE}),
}

ACTIVE_TASK_STATES = frozenset({_T.PENDING, _T.DISPATCHED, _T.RUNNING})
#: States a task can be claimed from (``running`` next).
CLAIMABLE_TASK_STATES = frozenset({_T.PENDING, _T.DISPATCHED})
RESULT_STATES = frozenset({_T.SUCCEEDED, _T.FAILED, _T.TIMED_OUT, _T.CANCELLED})


def check_task_transition(source: TaskState, target: TaskState) -> None:
    """Raise :class:`InvalidTransitionError` unless a task may go from ``source`` to ``target``."""
    if target not in TASK_TRANSITIONS[source]:
        raise InvalidTransitionError("task", source, target)


def check_orchestration_transition(source: OrchestrationStatus, target: OrchestrationStatus) -> None:
    """Raise :class:`InvalidTransitionError` unless an orchestration may go from ``source`` to ``target``."""
    if target not in ORCHESTRATION_TRANSITIONS[source]:
        raise InvalidTransitionError("orchestration", source, target)


def check_agent_transition(source: AgentState, target: AgentState) -> None:
    """Raise :class:`InvalidTransitionError` unless an agent version may go from ``source`` to ``target``."""
    if target not in AGENT_TRANSITIONS[source]:
        raise InvalidTransitionError("agent", source, target)
