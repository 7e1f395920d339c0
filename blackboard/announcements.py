"""Announcements: events the engine publishes about its registry, for whoever listens (bus triggers, people).

``agent.published`` (source ``arbiter.fabricator``) says that a worker version entered the registry from the
Fabricator (``state`` ``active``, or ``pending_approval`` when approval is required) or was approved (``state``
``active``). Unlike the completion and result events, which drive the engine, it drives nothing in the engine: it is
the one engine event a bus trigger may select (:data:`blackboard.triggers.TRIGGERABLE_ENGINE_EVENTS`).

The event id is derived from the agent version and its state, so a publication announced twice (a retried
fabrication that finds its version stored) is one event id: a trigger on it starts one standing orchestration.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from blackboard._base import Message
from blackboard.messages import Event
from blackboard.states import AgentOrigin, AgentState

__all__ = [
    "AGENT_PUBLISHED_DETAIL_TYPE",
    "FABRICATOR_SOURCE",
    "MAX_INLINE_CODE_BYTES",
    "AgentPublished",
    "announcement_id",
]

#: The source of the Fabricator's announcements.
FABRICATOR_SOURCE = "arbiter.fabricator"
#: The detail-type of the announcement of a published (or approved) agent version.
AGENT_PUBLISHED_DETAIL_TYPE = "agent.published"
#: Code up to this size (UTF-8) travels in the announcement (``code``), so that a sandboxed reviewer can read it.
MAX_INLINE_CODE_BYTES = 32 * 1024


def announcement_id(name: str, version: int, state: AgentState) -> str:
    """The id of the ``agent.published`` event of ``name@version`` in ``state``."""
    return f"agent.published.{name}.{version}.{state.value}"


class AgentPublished(Message):
    """Detail of the ``agent.published`` event (source ``arbiter.fabricator``).

    Attributes:
        name: the agent's name.
        version: the version published.
        state: ``active``, or ``pending_approval`` while it waits for a person's approval.
        origin: who wrote it (``fabricator`` for a fabricated version).
        description: what the agent does.
        code_sha256: the SHA-256 of its code (read it from the code store with this hash).
        code_key: the code store's key of the code.
        code: the code itself when it is at most :data:`MAX_INLINE_CODE_BYTES` (else ``None``: read it by hash).
        orchestration_id: the orchestration whose ``fabricate`` task asked for it, if any.
        task_id: that task, if any.
        approved: the event announces an approval, not the first publication.
        traceparent: the span of the publication (a triggered task's span links to it).
    """

    schema_: Literal["arbiter.agent-published/1"] = Field("arbiter.agent-published/1", alias="schema")
    name: str = Field(min_length=1, max_length=64)
    version: int = Field(ge=1)
    state: AgentState
    origin: AgentOrigin
    description: str = ""
    code_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    code_key: str = Field(min_length=1, max_length=1024)
    code: str | None = Field(None, max_length=MAX_INLINE_CODE_BYTES)
    orchestration_id: str | None = Field(None, max_length=128)
    task_id: str | None = Field(None, max_length=128)
    approved: bool = False
    traceparent: str | None = None

    @property
    def event_id(self) -> str:
        """The id of the event: the same for every announcement of this version in this state."""
        return announcement_id(self.name, self.version, self.state)

    def to_event(self) -> Event:
        """Wrap this detail in the ``arbiter.fabricator`` / ``agent.published`` envelope."""
        return Event.model_validate(
            {
                "id": self.event_id,
                "source": FABRICATOR_SOURCE,
                "detail-type": AGENT_PUBLISHED_DETAIL_TYPE,
                "detail": self.to_dict(),
            }
        )
