"""Standing orchestrations: a bus event that fires agents' bus triggers starts one orchestration that runs them.

A bus trigger (``{"pattern": {"source": [...], "detail-type": [...]}, "input": {...}}``) selects events on the bus.
For each event, the engine matches the bus triggers of the active agents (the first trigger of an agent that fires)
and, if any agent fires, creates a **standing orchestration** for the event:

- **once per event**: the orchestration is stored under an event id derived from the event's key
  (:func:`standing_key`: the event id, or for ``agent.published`` the id of the announcement, which EventBridge's
  own ids would hide), with the blackboard's conditional create, idempotent on the event id as for every
  orchestration. The same event delivered twice, or to two processes at once, starts one orchestration;
- its one wave holds one task per fired agent (task id :func:`standing_task_id`), stored ``pending`` with
  :meth:`Blackboard.add_wave` (a compare-and-set on the orchestration's version, so racing starters store it once)
  before it is dispatched; a crash in between leaves ``pending`` tasks that the watchdog sends again, and an
  orchestration created but never given its wave is given it by the watchdog's resume;
- it has the engine's budget (``max_tasks``: more fired agents than that end it ``failed`` with the budget named;
  the deadline; reactive tasks its agents' notes fire join its wave, bounded by ``max_trigger_depth``);
- it has no planner: when its wave closes, it ends ``completed`` with each agent's output (``failed`` naming the
  agents that failed), and the agents' stats are recorded as for any closed wave.

The engine's side lives in ``arbiter`` (the coordinator); this module holds what every runtime shares.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable

from blackboard.announcements import AGENT_PUBLISHED_DETAIL_TYPE, FABRICATOR_SOURCE, AgentPublished
from blackboard.exceptions import RecordValidationError
from blackboard.messages import AgentRef, Event
from blackboard.reactions import Fired, firing_agents
from blackboard.records import AgentManifest
from blackboard.triggers import event_document

__all__ = [
    "STANDING_ID_PREFIX",
    "bus_triggered",
    "standing_event",
    "standing_event_id",
    "standing_key",
    "standing_task_id",
]

logger = logging.getLogger(__name__)

#: The event id of a standing orchestration is this prefix and the key of the event that fired it.
STANDING_ID_PREFIX = "triggers:"
_MAX_ID = 256


def standing_key(event: Event) -> str:
    """The key a standing orchestration is idempotent on: the event's id, or an announcement's own id.

    EventBridge gives every ``PutEvents`` entry an id of its own, so an ``agent.published`` announced twice (a
    retried fabrication) would be two events there; its detail names the version and state, which make one key.
    """
    if event.source == FABRICATOR_SOURCE and event.detail_type == AGENT_PUBLISHED_DETAIL_TYPE:
        try:
            return AgentPublished.parse(event.detail).event_id
        except RecordValidationError:
            logger.warning("event_id=<%s> | agent.published with a detail that does not parse", event.id)
    return event.id


def standing_event_id(key: str) -> str:
    """The event id a standing orchestration is stored under for the event with ``key`` (find it with this)."""
    derived = f"{STANDING_ID_PREFIX}{key}"
    if len(derived) > _MAX_ID:
        derived = f"{STANDING_ID_PREFIX}sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return derived


def standing_event(event: Event, key: str) -> Event:
    """The event a standing orchestration is stored with: ``event`` under an id derived from ``key``.

    A derived id, so that the same event can also start an ordinary (planned) orchestration where it is ingress.
    """
    return event.model_copy(update={"id": standing_event_id(key)})


def standing_task_id(agent: AgentRef) -> str:
    """The id of the task a standing orchestration runs for ``agent`` (one per agent version and event)."""
    return f"bus.{agent.name}.{agent.version}"


def bus_triggered(event: Event, key: str, manifests: Iterable[AgentManifest]) -> list[Fired]:
    """The agents whose bus triggers fire for ``event`` (the first trigger of an agent that fires), by name.

    A trigger that matches but gives no valid input is logged as a warning and fires nothing.

    Args:
        event: the event as delivered.
        key: its key (:func:`standing_key`): what ``$.id`` gives.
        manifests: the active agents.
    """
    return firing_agents(event_document(event, key), manifests, "bus", f"event {key}")
