"""Publishing: code into the code store by SHA-256, the manifest into the registry with a conditional put.

A new capability gets a new name at version 1; a name that exists is never overwritten (the draft gets a free
variant of its name). A replacement for a quarantined agent is the next version of that agent. With approval
required, a new version waits in ``pending_approval`` until :func:`approve`.

Both announce the version on the bus: an ``agent.published`` event (source ``arbiter.fabricator``,
:class:`blackboard.announcements.AgentPublished`), the one engine event a bus trigger may select (a reviewer of every
fabricated version). The registry write comes first and is what counts: an event the bus does not take is logged,
and the version stays published.
"""

from __future__ import annotations

import logging
import re

from blackboard import (
    AgentManifest,
    AgentNotFoundError,
    AgentOrigin,
    AgentState,
    Backends,
    EventBus,
    Registry,
    tracing,
)
from blackboard.announcements import MAX_INLINE_CODE_BYTES, AgentPublished
from blackboard.ports.code_store import CodeStore
from blackboard.records import AGENT_NAME_PATTERN, RESERVED_AGENT_NAMES
from fabricator.exceptions import FabricatorError
from fabricator.generator import Draft
from fabricator.harness import ValidationReport

__all__ = ["announce", "approve", "free_name", "publish", "rollback", "safe_name"]

logger = logging.getLogger(__name__)

_NAME = re.compile(AGENT_NAME_PATTERN)


def safe_name(raw: str) -> str:
    """A valid agent name made from whatever the model proposed."""
    name = re.sub(r"[^a-z0-9_]+", "_", raw.strip().lower()).strip("_")[:56]
    if not name or not name[0].isalpha():
        name = f"agent_{name}"[:56]
    return name


def free_name(registry: Registry, proposed: str) -> str:
    """``proposed`` made valid, or its first variant (``_2``, ``_3``...) that no agent and no reserved name has."""
    base = safe_name(proposed)
    for index in range(1, 1000):
        name = base if index == 1 else f"{base}_{index}"
        if _NAME.match(name) and name not in RESERVED_AGENT_NAMES and not registry.versions(name):
            return name
    raise FabricatorError(f"no free name left for {proposed!r}")


def publish(
    backends: Backends,
    draft: Draft,
    report: ValidationReport,
    *,
    replaces: str | None = None,
    exact_version: int | None = None,
    approval: bool = False,
    timeout_seconds: float = 60.0,
    orchestration_id: str | None = None,
    task_id: str | None = None,
) -> AgentManifest:
    """Store a validated draft as a new agent (or a new version of ``replaces``), announce it, return its manifest.

    With ``exact_version`` the replacement is exactly that version of ``replaces``: if it exists already (a duplicate
    request was first), the stored one is returned and nothing else is written; it is announced again with the same
    event id (so whoever missed the first announcement gets it, and a trigger on it still fires once).

    Args:
        backends: where the code, the report and the manifest go, and the bus of the announcement.
        draft: the validated draft.
        report: its validation report.
        replaces: the agent this draft is the next version of.
        exact_version: the version the replacement must have.
        approval: the version waits in ``pending_approval`` for a person.
        timeout_seconds: the agent's timeout.
        orchestration_id: the orchestration whose ``fabricate`` task asked for it (in the announcement).
        task_id: that task (in the announcement).
    """
    code = backends.code_store.put(draft.code.encode())
    report_ref = backends.code_store.put_json(report.model_dump(mode="json")).sha256
    registry = backends.registry
    state = AgentState.PENDING_APPROVAL if approval else AgentState.ACTIVE
    for _ in range(10):  # a concurrent publisher may take the name or the version first: pick again
        if replaces is not None:
            if not registry.versions(replaces):
                raise AgentNotFoundError(replaces)
            name, version = replaces, exact_version or registry.next_version(replaces)
        else:
            name, version = free_name(registry, draft.name), 1
        manifest = AgentManifest(
            name=name,
            version=version,
            description=draft.description,
            input_schema=draft.input_schema,
            output_schema=draft.output_schema,
            code=code,
            state=state,
            origin=AgentOrigin.FABRICATOR,
            isolation="sandbox",
            timeout_seconds=timeout_seconds,
            validation_report=report_ref,
        )
        stored = registry.put(manifest)
        if stored.applied or (replaces is not None and exact_version is not None):
            announce(backends.bus, stored.record, code=draft.code, orchestration_id=orchestration_id, task_id=task_id)
            return stored.record
    raise FabricatorError(f"could not publish {draft.name!r}: the registry kept changing")


def announce(
    bus: EventBus,
    manifest: AgentManifest,
    *,
    code: str | None = None,
    orchestration_id: str | None = None,
    task_id: str | None = None,
    approved: bool = False,
) -> str | None:
    """Publish the ``agent.published`` event of ``manifest``; return its id, or ``None`` if the bus refused it.

    ``code`` (the version's code) travels in the event when it is at most ``MAX_INLINE_CODE_BYTES``. The version is
    in the registry already: a bus that fails is logged, and the version stays published.
    """
    detail = AgentPublished(
        name=manifest.name,
        version=manifest.version,
        state=manifest.state,
        origin=manifest.origin,
        description=manifest.description,
        code_sha256=manifest.code.sha256,
        code_key=manifest.code.key,
        code=code if code is not None and len(code.encode()) <= MAX_INLINE_CODE_BYTES else None,
        orchestration_id=orchestration_id,
        task_id=task_id,
        approved=approved,
        traceparent=tracing.current_traceparent(),
    )
    event = detail.to_event()
    try:
        bus.publish([event])
    except Exception:
        logger.exception("agent=<%s>, event_id=<%s> | could not publish agent.published", manifest.ref, event.id)
        return None
    logger.debug(
        "agent=<%s>, state=<%s>, event_id=<%s> | published agent.published", manifest.ref, manifest.state, event.id
    )
    return event.id


def approve(
    registry: Registry,
    name: str,
    version: int,
    *,
    bus: EventBus | None = None,
    code_store: CodeStore | None = None,
) -> AgentManifest:
    """Activate a version that waits for approval (and announce it on ``bus``: ``agent.published``, ``active``).

    With ``code_store`` the announcement carries the version's code (read by its hash, verified).

    Raises:
        FabricatorError: the version is not waiting for approval.
    """
    moved = registry.set_state(name, version, AgentState.PENDING_APPROVAL, AgentState.ACTIVE)
    if not moved.applied:
        raise FabricatorError(f"{name}@{version} is {moved.record.state.value}, not pending approval")
    if bus is not None:
        code = code_store.get(moved.record.code.sha256).decode() if code_store is not None else None
        announce(bus, moved.record, code=code, approved=True)
    return moved.record


def rollback(registry: Registry, name: str) -> AgentManifest:
    """Retire the newest active version of ``name`` and re-activate the version before it.

    Raises:
        FabricatorError: there is no active version, or no earlier version to go back to.
    """
    versions = registry.versions(name)
    active = [m for m in versions if m.state is AgentState.ACTIVE]
    if not active:
        raise FabricatorError(f"{name!r} has no active version to roll back")
    current = active[-1]
    usable = (AgentState.ACTIVE, AgentState.RETIRED, AgentState.QUARANTINED)
    earlier = [m for m in versions if m.version < current.version and m.state in usable]
    if not earlier:
        raise FabricatorError(f"{name}@{current.version} has no earlier version to go back to")
    previous = earlier[-1]
    registry.set_state(name, current.version, AgentState.ACTIVE, AgentState.RETIRED)
    if previous.state is AgentState.ACTIVE:
        return previous
    return registry.set_state(name, previous.version, previous.state, AgentState.ACTIVE).record
