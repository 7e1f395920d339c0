"""Reactive tasks: a note written in an orchestration that fires an agent's trigger adds a task for that agent.

The note's writer adds them (the wrapper, right after it wrote a task's notes and *before* it records the task's
result): the writing task is not done yet, so its wave is still open and the reactive task joins it
(:meth:`Blackboard.add_reactive_task`), and the wave cannot close before the reactive task is done. The task is
stored ``pending``; the engine dispatches it when the writer's completion arrives, and the watchdog sends it again if
that never happens (a crash between the note and the dispatch), as for any ``pending`` task.

Exactly once per (agent name@version, note key, note version): the task id is derived from the three, and the port's
insert is conditional on the id being free. A chain of reactions is bounded by the orchestration's
``budget.max_trigger_depth``; an agent already in the chain is not triggered again (a cycle); every reactive task
counts in ``max_tasks``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from blackboard._base import utcnow
from blackboard.messages import AgentRef, new_completion_token
from blackboard.ports.blackboard import Blackboard, Reacted
from blackboard.ports.registry import Registry
from blackboard.records import AgentManifest, Note, Reaction, Task
from blackboard.triggers import fire, note_document

__all__ = [
    "QUEUE_GRACE_SECONDS",
    "Fired",
    "ReactiveAgents",
    "react",
    "reactive_task_id",
    "result_note_key",
    "triggered_by",
]

logger = logging.getLogger(__name__)

#: Time a reactive task may wait in the queue on top of its agent's timeout before it times out.
QUEUE_GRACE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Fired:
    """One agent a note fires: which of its triggers, and the input it gets."""

    manifest: AgentManifest
    trigger: int
    input: dict[str, Any]


class ReactiveAgents:
    """The active agents that have triggers of one kind, read from the registry again only when its revision changes.

    Every task that writes notes asks (``kind="note"``), and every bus event (``kind="bus"``); a registry of
    thousands of agents is listed once per change, not per note or event.

    Args:
        registry: where the agents are.
        kind: ``note`` for the agents with note triggers, ``bus`` for those with bus triggers.
    """

    def __init__(self, registry: Registry, kind: Literal["note", "bus"] = "note") -> None:
        self._registry = registry
        self.kind = kind
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._agents: list[AgentManifest] = []

    def current(self) -> list[AgentManifest]:
        """The newest active version of every agent with a trigger of this kind."""
        revision, active = self._registry.current_active()
        with self._lock:
            if revision == self._revision:
                return self._agents
        agents = [m for m in active.values() if any(t.kind == self.kind for t in m.triggers)]
        with self._lock:
            self._revision, self._agents = revision, agents
        return agents


def reactive_task_id(agent: AgentRef, note_key: str, note_version: int) -> str:
    """The id of the reactive task ``agent`` gets for one version of a note (the same for every writer)."""
    digest = hashlib.sha256(note_key.encode()).hexdigest()[:20]
    return f"rx.{agent.name}.{agent.version}.{digest}.{note_version}"


def result_note_key(task: Task) -> str:
    """The key of the note a reactive task's output is written to: ``<agent>@<the note key that fired it>``."""
    assert task.reaction is not None
    return f"{task.agent.name}@{task.reaction.note_key}"[:256]


def firing_agents(
    document: dict[str, Any], manifests: Iterable[AgentManifest], kind: Literal["note", "bus"], source: str
) -> list[Fired]:
    """The agents whose ``kind`` triggers fire for ``document`` (the first trigger of an agent that fires), by name.

    A trigger that matches but gives no valid input fires nothing and is logged as a warning naming ``source``.
    """
    fired: list[Fired] = []
    for manifest in sorted(manifests, key=lambda m: m.name):
        for index, trigger in enumerate(manifest.triggers):
            if trigger.kind != kind:
                continue
            firing = fire(trigger, document, manifest.input_schema)
            if firing.input is not None:
                fired.append(Fired(manifest, index, firing.input))
                break
            if firing.matched:
                logger.warning(
                    "source=<%s>, agent=<%s> | matches %s trigger %d but gives no input: %s",
                    source,
                    manifest.ref,
                    kind,
                    index,
                    firing.problem,
                )
    return fired


def triggered_by(note: Note, manifests: Iterable[AgentManifest]) -> list[Fired]:
    """The agents whose note triggers fire for ``note`` (the first trigger of an agent that fires), by name."""
    document = note_document(note.orchestration_id, note.key, note.value, note.author, note.version)
    return firing_agents(document, manifests, "note", f"note {note.key!r} of {note.orchestration_id}")


def react(
    board: Blackboard,
    agents: Registry | ReactiveAgents | Iterable[AgentManifest],
    cause: Task,
    notes: Sequence[Note],
    *,
    traceparent: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> list[Reacted]:
    """Add the reactive tasks that ``notes``, just written by ``cause``, fire (see the module doc).

    Args:
        board: the blackboard of the orchestration.
        agents: the active agents (their note triggers are matched), or where to read them.
        cause: the task that wrote the notes (not done yet: its wave is open).
        notes: the notes as written.
        traceparent: the span of the write (the reactive tasks' spans link to it).
        clock: returns "now" (the tasks' deadlines start from it).

    Returns:
        One outcome per fired agent and note: added, or refused with the reason (a cycle, a budget, a duplicate).
    """
    if not notes:
        return []
    if isinstance(agents, Registry):
        agents = agents.active_agents().values()
    elif isinstance(agents, ReactiveAgents):
        agents = agents.current()
    reactive = [m for m in agents if any(t.kind == "note" for t in m.triggers)]
    if not reactive:
        return []
    chain = cause.reaction.chain if cause.reaction is not None else [cause.agent.name]
    depth = cause.reaction.depth + 1 if cause.reaction is not None else 1
    outcomes: list[Reacted] = []
    for note in notes:
        for fired in triggered_by(note, reactive):
            task = _task_for(cause, note, fired, chain, depth, traceparent, clock())
            if fired.manifest.name in chain:
                outcomes.append(Reacted(task, "cycle"))
            else:
                outcomes.append(board.add_reactive_task(task))
            outcome = outcomes[-1]
            logger.debug(
                "task_id=<%s>, key=<%s>, version=<%d>, agent=<%s>, refused=<%s> | note fired a trigger",
                task.task_id,
                note.key,
                note.version,
                fired.manifest.ref,
                outcome.refused,
            )
    return outcomes


def _task_for(
    cause: Task,
    note: Note,
    fired: Fired,
    chain: list[str],
    depth: int,
    traceparent: str | None,
    now: datetime,
) -> Task:
    manifest = fired.manifest
    reaction = Reaction(
        note_key=note.key,
        note_version=note.version,
        note_author=note.author,
        trigger=fired.trigger,
        depth=depth,
        chain=[*chain, manifest.name],
        cause_task_id=cause.task_id,
        traceparent=traceparent,
    )
    return Task(
        orchestration_id=cause.orchestration_id,
        task_id=reactive_task_id(manifest.ref, note.key, note.version),
        wave=cause.wave,
        agent=manifest.ref,
        input=fired.input,
        max_attempts=manifest.max_attempts or Task.model_fields["max_attempts"].default,
        deadline=now + timedelta(seconds=manifest.timeout_seconds + QUEUE_GRACE_SECONDS),
        token=new_completion_token(),
        reaction=reaction,
    )
