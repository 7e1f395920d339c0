"""A person's decisions about agent versions, each applied with a compare-and-set and recorded (who, when, why).

The command line (``arbiter agents approve|reject|quarantine|release|rollback|retire``) and the dashboard
(``arbiter ui``) call these functions, so both apply the same rules and leave the same record. Every change of state
is the registry's conditional write: of two people who approve the same version at once exactly one wins, the other
gets :class:`DecisionConflictError` naming the state the version is in now.

Only the caller whose change applied records it: a note on the blackboard under the agent's decision log
(orchestration id ``agent:<name>``, see :func:`decision_log_id`), keyed by time, action and version, written by the
person (``author``), with the reason. :func:`decision_history` reads them back, oldest first.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arbiter.exceptions import UsageError
from arbiter.reflection import Reflector
from blackboard import AgentManifest, AgentState, Backends
from fabricator import FabricatorError
from fabricator.publisher import approve as publisher_approve
from fabricator.publisher import rollback as publisher_rollback

__all__ = [
    "ACTIONS",
    "Decision",
    "DecisionConflictError",
    "approve",
    "decision_history",
    "decision_log_id",
    "pick_version",
    "quarantine",
    "reject",
    "release",
    "retire",
    "rollback",
    "who",
]

logger = logging.getLogger(__name__)

ACTIONS = ("approve", "reject", "quarantine", "release", "rollback", "retire")
_MAX_REASON = 2000


class DecisionConflictError(UsageError):
    """The version is not in the state the decision needs (someone else decided first, or it never was).

    Attributes:
        agent: the agent's name.
        version: the version.
        state: the state it is in now.
    """

    def __init__(self, agent: str, version: int, state: AgentState, message: str) -> None:
        self.agent = agent
        self.version = version
        self.state = state
        super().__init__(message)


@dataclass(frozen=True)
class Decision:
    """One recorded decision.

    Attributes:
        action: one of :data:`ACTIONS`.
        agent: the agent's name.
        version: the version it changed.
        state: the state the version was moved to.
        by: who decided.
        reason: why (may be empty, except for a rejection).
        at: when (UTC).
    """

    action: str
    agent: str
    version: int
    state: str
    by: str
    reason: str
    at: datetime


def who(channel: str, name: str | None = None) -> str:
    """Who decides: ``name`` (else this machine's user name) and the channel, e.g. ``ada via ui``."""
    person = (name or "").strip()[:64]
    if not person:
        try:
            person = getpass.getuser()
        except (KeyError, OSError):  # no user name for this uid (a container)
            person = "unknown"
    return f"{person} via {channel}"


def decision_log_id(name: str) -> str:
    """The orchestration id the notes of ``name``'s decision log are written under."""
    return f"agent:{name}"


def _record(backends: Backends, action: str, manifest: AgentManifest, by: str, reason: str) -> Decision:
    at = datetime.now(UTC)
    decision = Decision(action, manifest.name, manifest.version, manifest.state.value, by, reason, at)
    value = {"action": action, "agent": str(manifest.ref), "state": decision.state, "by": by, "reason": reason}
    key = f"{at:%Y-%m-%dT%H:%M:%S.%f}Z {action} {manifest.name}@{manifest.version}"
    backends.blackboard.put_note(decision_log_id(manifest.name), key, value, author=by[:128])
    logger.info("agent=<%s>, by=<%s> | %s: %s", manifest.ref, by, action, reason)
    return decision


def decision_history(backends: Backends, name: str) -> list[Decision]:
    """Every recorded decision about ``name``'s versions, oldest first."""
    found = []
    for note in backends.blackboard.notes(decision_log_id(name)):
        value: dict[str, Any] = note.value if isinstance(note.value, dict) else {}
        _, _, version = str(value.get("agent", "")).rpartition("@")
        found.append(
            Decision(
                action=str(value.get("action", "?")),
                agent=name,
                version=int(version) if version.isdigit() else 0,
                state=str(value.get("state", "?")),
                by=str(value.get("by", note.author)),
                reason=str(value.get("reason", "")),
                at=note.updated_at,
            )
        )
    return sorted(found, key=lambda d: d.at)


def pick_version(backends: Backends, name: str, version: int | None, state: AgentState) -> AgentManifest:
    """The version to act on: ``version`` (which must be in ``state``), else the newest version in ``state``.

    Raises:
        UsageError: no such agent or version, or no version in ``state``.
        DecisionConflictError: ``version`` is in another state.
    """
    versions = backends.registry.versions(name)
    if not versions:
        raise UsageError(f"no agent named {name!r}")
    if version is not None:
        chosen = [m for m in versions if m.version == version]
        if not chosen:
            raise UsageError(f"{name!r} has no version {version}; it has {', '.join(str(m.version) for m in versions)}")
        if chosen[0].state is not state:
            raise DecisionConflictError(
                name, version, chosen[0].state, f"{name}@{version} is {chosen[0].state.value}, not {state.value}"
            )
        return chosen[0]
    candidates = [m for m in versions if m.state is state]
    if not candidates:
        raise UsageError(f"{name!r} has no {state.value} version (see `arbiter agents show {name}`)")
    return candidates[-1]


def _reason(reason: str) -> str:
    return reason.strip()[:_MAX_REASON]


def _not_pending(name: str, version: int, state: AgentState) -> DecisionConflictError:
    already = "already approved: " if state is AgentState.ACTIVE else ""
    return DecisionConflictError(
        name, version, state, f"{already}{name}@{version} is {state.value}, not pending approval"
    )


def approve(backends: Backends, name: str, version: int, *, by: str, reason: str = "") -> AgentManifest:
    """Activate a version that waits for approval (:func:`fabricator.publisher.approve`) and record it.

    Raises:
        DecisionConflictError: the version is not pending approval (approved or rejected already).
        AgentNotFoundError: there is no such version.
    """
    try:
        manifest = publisher_approve(backends.registry, name, version, bus=backends.bus, code_store=backends.code_store)
    except FabricatorError as exc:
        raise _not_pending(name, version, backends.registry.get(name, version).state) from exc
    _record(backends, "approve", manifest, by, _reason(reason))
    return manifest


def reject(backends: Backends, name: str, version: int, *, by: str, reason: str) -> AgentManifest:
    """Retire a version that waits for approval, keeping the reason.

    Raises:
        UsageError: no reason was given.
        DecisionConflictError: the version is not pending approval.
    """
    why = _reason(reason)
    if not why:
        raise UsageError("a rejection needs a reason (it is kept with the decision)")
    moved = backends.registry.set_state(name, version, AgentState.PENDING_APPROVAL, AgentState.RETIRED)
    if not moved.applied:
        raise _not_pending(name, version, moved.record.state)
    _record(backends, "reject", moved.record, by, why)
    return moved.record


def quarantine(backends: Backends, name: str, version: int | None, *, by: str, reason: str) -> AgentManifest:
    """Take an active version out of service (default: the newest active one), as reflection does for a person.

    Raises:
        UsageError: no such agent or no active version.
        DecisionConflictError: the version is not active (or stopped being so meanwhile).
    """
    chosen = pick_version(backends, name, version, AgentState.ACTIVE)
    why = _reason(reason) or "quarantined by hand"
    done = Reflector(backends).quarantine(name, chosen.version, why, by="person")
    if done is None:
        state = backends.registry.get(name, chosen.version).state
        raise DecisionConflictError(name, chosen.version, state, f"{chosen.ref} changed state meanwhile; nothing done")
    _record(backends, "quarantine", done.agent, by, why)
    return done.agent


def release(backends: Backends, name: str, version: int | None, *, by: str, reason: str = "") -> AgentManifest:
    """Put a quarantined version back into service (default: the newest quarantined one).

    Raises:
        UsageError: no such agent or no quarantined version.
        DecisionConflictError: the version is not quarantined (or stopped being so meanwhile).
    """
    chosen = pick_version(backends, name, version, AgentState.QUARANTINED)
    moved = backends.registry.set_state(name, chosen.version, AgentState.QUARANTINED, AgentState.ACTIVE)
    if not moved.applied:
        raise DecisionConflictError(
            name, chosen.version, moved.record.state, f"{chosen.ref} changed state meanwhile; nothing done"
        )
    _record(backends, "release", moved.record, by, _reason(reason))
    return moved.record


def rollback(backends: Backends, name: str, *, by: str, reason: str = "") -> AgentManifest:
    """Retire the newest active version and re-activate the one before it (:func:`fabricator.publisher.rollback`).

    Returns:
        The version that is active now.

    Raises:
        FabricatorError: there is no active version, or no earlier version to go back to.
    """
    manifest = publisher_rollback(backends.registry, name)
    _record(backends, "rollback", manifest, by, _reason(reason))
    return manifest


def retire(backends: Backends, name: str, version: int | None, *, by: str, reason: str = "") -> list[int]:
    """Retire every active or quarantined version of ``name`` (or one ``version``, in any state).

    Returns:
        The versions this call retired (empty when there was none to retire).
    """
    registry = backends.registry
    retirable = (AgentState.ACTIVE, AgentState.QUARANTINED) if version is None else tuple(AgentState)
    why = _reason(reason)
    retired = []
    for m in registry.versions(name):
        if (version is None or m.version == version) and m.state in retirable and m.state is not AgentState.RETIRED:
            moved = registry.set_state(name, m.version, m.state, AgentState.RETIRED)
            if moved.applied:
                _record(backends, "retire", moved.record, by, why)
                retired.append(m.version)
    return retired
