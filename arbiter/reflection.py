"""Reflection: agents that keep failing are quarantined and, when they were fabricated, written anew.

After a wave's results are counted in the stats of the agent versions it used, :class:`Reflector` checks each of
those versions against the :class:`ReflectionPolicy`. A version that fails too often is moved ``active →
quarantined`` with a compare-and-set, so that of any number of coordinators that see it at once exactly one
quarantines it; only that one records the decision (a note on the orchestration), publishes ``agent.quarantined``
and, for agents the Fabricator wrote, asks the Fabricator for the next version of the same name with the recent
failures (inputs and errors) as evidence. The new version goes through validation like any fabricated agent; the
quarantined one stays in the registry with its stats.

The planner is only ever offered active versions (:meth:`~blackboard.Registry.active_agents`), so a quarantined
version disappears from its tools at once, and so does a name that has no active version left.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from arbiter.constants import (
    ENV_QUARANTINE_FAILURE_RATE,
    ENV_QUARANTINE_MIN_INVOCATIONS,
    ENV_REFABRICATE,
    ENV_REFLECTION,
)
from arbiter.exceptions import UsageError
from blackboard import (
    AgentManifest,
    AgentOrigin,
    AgentState,
    AgentStats,
    Backends,
    Event,
    FabricationRequest,
    Task,
    TaskResult,
    TaskState,
)
from blackboard._base import Message

__all__ = [
    "QUARANTINED_DETAIL_TYPE",
    "REFLECTION_SOURCE",
    "AgentQuarantined",
    "Quarantine",
    "ReflectionPolicy",
    "Reflector",
    "failure_evidence",
    "note_key",
]

logger = logging.getLogger(__name__)

REFLECTION_SOURCE = "arbiter.reflection"
QUARANTINED_DETAIL_TYPE = "agent.quarantined"
Refabricate = Literal["fabricated", "all", "off"]
_FAILED = (TaskState.FAILED, TaskState.TIMED_OUT)


@dataclass(frozen=True)
class ReflectionPolicy:
    """When an agent version is quarantined, and whose replacement the Fabricator is asked for.

    A version is quarantined once it has at least ``min_invocations`` invocations and the share of them that
    failed or timed out is at least ``max_failure_rate``. The share is taken over the version's whole life (its
    stats): every attempt counts, retries included. A new version starts with empty stats, so it is judged on its
    own record. (A version that worked for a long time and then breaks is quarantined only once its failures reach
    the share; quarantine it by hand with ``arbiter agents quarantine`` when that is too slow.)

    Attributes:
        enabled: quarantine automatically at all.
        min_invocations: invocations before a version can be judged.
        max_failure_rate: the failure share (0 to 1) at or above which it is quarantined.
        refabricate: which quarantined agents the Fabricator rewrites: ``fabricated`` (agents it wrote),
            ``all`` (also agents a user registered) or ``off``.
        evidence: how many recent failures go to the Fabricator with the request.
    """

    enabled: bool = True
    min_invocations: int = 5
    max_failure_rate: float = 0.6
    refabricate: Refabricate = "fabricated"
    evidence: int = 5

    def __post_init__(self) -> None:
        if self.min_invocations < 1:
            raise UsageError(f"min_invocations must be at least 1, not {self.min_invocations}")
        if not 0 < self.max_failure_rate <= 1:
            raise UsageError(f"max_failure_rate must be in (0, 1], not {self.max_failure_rate}")
        if self.refabricate not in ("fabricated", "all", "off"):
            raise UsageError(f"refabricate must be 'fabricated', 'all' or 'off', not {self.refabricate!r}")
        if self.evidence < 0:
            raise UsageError(f"evidence must be 0 or more, not {self.evidence}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReflectionPolicy:
        """The defaults, overridden by the ``ARBITER_REFLECTION``, ``ARBITER_QUARANTINE_*`` variables where set.

        ``ARBITER_REFABRICATE`` sets ``refabricate``; see :mod:`arbiter.constants`.

        Raises:
            UsageError: a variable has a value that is not allowed (the message names it).
        """
        env = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        if raw := env.get(ENV_REFLECTION, "").strip().lower():
            if raw not in ("on", "off"):
                raise UsageError(f"{ENV_REFLECTION} must be 'on' or 'off', not {raw!r}")
            changes["enabled"] = raw == "on"
        for name, key, kind in (
            (ENV_QUARANTINE_MIN_INVOCATIONS, "min_invocations", int),
            (ENV_QUARANTINE_FAILURE_RATE, "max_failure_rate", float),
        ):
            if raw := env.get(name, "").strip():
                try:
                    changes[key] = kind(raw)
                except ValueError:
                    raise UsageError(f"{name} must be a number, not {raw!r}") from None
        if raw := env.get(ENV_REFABRICATE, "").strip().lower():
            changes["refabricate"] = raw
        try:
            return cls(**changes)
        except UsageError as exc:
            raise UsageError(f"{exc} (from the environment: {', '.join(sorted(changes))})") from None

    def verdict(self, stats: AgentStats) -> str | None:
        """Why a version with these stats should be quarantined, or ``None`` if it should not."""
        if not self.enabled or stats.invocations < self.min_invocations:
            return None
        if stats.failure_rate < self.max_failure_rate:
            return None
        return (
            f"{stats.failures} of {stats.invocations} invocations failed or timed out "
            f"({stats.failure_rate:.0%} >= {self.max_failure_rate:.0%})"
        )

    def refabricates(self, origin: AgentOrigin) -> bool:
        """Whether a quarantined agent of this origin gets a new version from the Fabricator."""
        if self.refabricate == "all":
            return origin is not AgentOrigin.BUILTIN
        return self.refabricate == "fabricated" and origin is AgentOrigin.FABRICATOR


class AgentQuarantined(Message):
    """Detail of the ``agent.quarantined`` event (source ``arbiter.reflection``)."""

    schema_: Literal["arbiter.agent-quarantined/1"] = Field("arbiter.agent-quarantined/1", alias="schema")
    name: str
    version: int
    origin: AgentOrigin
    reason: str
    by: Literal["policy", "person"] = "policy"
    orchestration_id: str | None = None
    refabrication_requested: bool = False
    invocations: int = 0
    failure_rate: float = 0.0
    traceparent: str | None = None

    def to_event(self) -> Event:
        """Wrap this detail in its event envelope."""
        return Event.model_validate(
            {"source": REFLECTION_SOURCE, "detail-type": QUARANTINED_DETAIL_TYPE, "detail": self.to_dict()}
        )


@dataclass(frozen=True)
class Quarantine:
    """A quarantine that took place (only the caller whose compare-and-set applied gets one).

    Attributes:
        agent: the version as it is now (``quarantined``).
        reason: why.
        request: the re-fabrication request sent, if any.
    """

    agent: AgentManifest
    reason: str
    request: FabricationRequest | None


def note_key(name: str, version: int) -> str:
    """The key of the note that records a reflection decision about ``name@version``."""
    return f"reflection:{name}@{version}"


def _failures(task: Task) -> Iterable[TaskResult]:
    for result in [*task.attempts, *([task.result] if task.result else [])]:
        if result.status in _FAILED and result.error is not None and result.error.agent_fault:
            yield result


def failure_evidence(
    backends: Backends, name: str, version: int, recent: Sequence[Task] = (), *, limit: int = 5
) -> list[dict[str, Any]]:
    """The latest failures of ``name@version``: one entry per task (its input and its last error), newest first.

    ``recent`` (the tasks of the wave just closed) comes first; the failed and timed-out tasks on the blackboard
    fill up to ``limit``.
    """
    if limit <= 0:
        return []
    found: dict[tuple[str, str], tuple[Task, TaskResult]] = {}
    stored = backends.blackboard.find_tasks(_FAILED, limit=500)
    for task in [*recent, *stored]:
        if (task.agent.name, task.agent.version) != (name, version):
            continue
        failures = list(_failures(task))
        key = (task.orchestration_id, task.task_id)
        if failures and key not in found:
            found[key] = (task, failures[-1])
    newest = sorted(found.values(), key=lambda pair: pair[1].finished_at, reverse=True)[:limit]
    return [
        {
            "orchestration_id": task.orchestration_id,
            "task_id": task.task_id,
            "input": task.input,
            "status": result.status.value,
            "error": {"type": result.error.type, "message": result.error.message[:1000]} if result.error else None,
            "attempts": len(list(_failures(task))),
        }
        for task, result in newest
    ]


def _inputs(schema: Mapping[str, Any]) -> dict[str, str]:
    """The input parameters of a schema as ``name: description`` for the Fabricator."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    described: dict[str, str] = {}
    for key, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "any")
        text = spec.get("description") or ""
        described[str(key)] = f"{kind}{'' if key in required else ', optional'}{': ' + text if text else ''}"
    return described


class Reflector:
    """Applies a :class:`ReflectionPolicy` after stats are recorded, and quarantines by request.

    Args:
        backends: the registry, blackboard and bus.
        policy: when to quarantine and whom to rewrite.
        request_fabrication: where re-fabrication requests go (the Fabricator's queue); without it, nothing is
            rewritten.
    """

    def __init__(
        self,
        backends: Backends,
        policy: ReflectionPolicy | None = None,
        request_fabrication: Callable[[FabricationRequest], None] | None = None,
    ) -> None:
        self.backends = backends
        self.policy = policy or ReflectionPolicy()
        self._request = request_fabrication

    def after_stats(
        self,
        orchestration_id: str,
        tasks: Sequence[Task],
        versions: Iterable[tuple[str, int]],
        updated: Mapping[tuple[str, int], AgentStats] | None = None,
    ) -> list[Quarantine]:
        """Judge the versions whose stats were just updated for the wave ``tasks`` of ``orchestration_id``.

        ``updated`` holds the stats those updates produced (:meth:`Registry.add_stats`): a version whose stats give
        no verdict there is not read again (one read less per version and wave on DynamoDB); the others are read,
        and judged on the stats read, since the version's state (is it still active?) decides too.

        Never raises: a failure to reflect is logged and leaves the agent as it was.
        """
        done: list[Quarantine] = []
        if not self.policy.enabled:
            return done
        for name, version in versions:
            known = None if updated is None else updated.get((name, version))
            if known is not None and self.policy.verdict(known) is None:
                continue
            try:
                manifest = self.backends.registry.get(name, version)
                if manifest.state is not AgentState.ACTIVE:
                    continue
                reason = self.policy.verdict(manifest.stats)
                if reason is None:
                    continue
                quarantined = self.quarantine(name, version, reason, orchestration_id=orchestration_id, recent=tasks)
            except Exception:
                logger.exception("agent=<%s@%s> | reflection failed", name, version)
                continue
            if quarantined is not None:
                done.append(quarantined)
        return done

    def quarantine(
        self,
        name: str,
        version: int,
        reason: str,
        *,
        orchestration_id: str | None = None,
        recent: Sequence[Task] = (),
        by: Literal["policy", "person"] = "policy",
    ) -> Quarantine | None:
        """Quarantine an active version (compare-and-set) and follow up; ``None`` if it was not active any more.

        The follow-up happens only for the caller whose change applied: a note on the orchestration (when one is
        given), the ``agent.quarantined`` event, and for a policy decision the re-fabrication request when the
        policy rewrites agents of this origin.
        """
        moved = self.backends.registry.set_state(name, version, AgentState.ACTIVE, AgentState.QUARANTINED)
        if not moved.applied:
            return None
        agent = moved.record
        level = logging.WARNING if by == "policy" else logging.INFO
        logger.log(level, "agent=<%s@%s>, by=<%s> | quarantined: %s", name, version, by, reason)
        request = None
        if by == "policy" and orchestration_id is not None and self.policy.refabricates(agent.origin):
            request = self._refabricate(agent, orchestration_id, recent)
        if orchestration_id is not None:
            self._note(agent, reason, orchestration_id, request)
        self._publish(agent, reason, by, orchestration_id, request)
        return Quarantine(agent, reason, request)

    def _refabricate(
        self, agent: AgentManifest, orchestration_id: str, recent: Sequence[Task]
    ) -> FabricationRequest | None:
        if self._request is None:
            return None
        request = FabricationRequest(
            orchestration_id=orchestration_id,
            task_id=f"reflection:{agent.name}@{agent.version}",
            capability=agent.description,
            inputs=_inputs(agent.input_schema),
            replaces=agent.name,
            replaces_version=agent.version,
            evidence=failure_evidence(self.backends, agent.name, agent.version, recent, limit=self.policy.evidence),
        )
        try:
            self._request(request)
        except Exception:
            logger.exception("agent=<%s> | could not request a new version", agent.ref)
            return None
        return request

    def _note(
        self, agent: AgentManifest, reason: str, orchestration_id: str, request: FabricationRequest | None
    ) -> None:
        if request is not None:
            follow_up = f"the Fabricator was asked for {agent.name}@{agent.version + 1}"
        elif self.policy.refabricates(agent.origin):
            follow_up = "no Fabricator is configured: register a new version by hand"
        else:
            follow_up = f"a {agent.origin.value} agent is not rewritten automatically (see ARBITER_REFABRICATE)"
        value = {
            "agent": str(agent.ref),
            "state": AgentState.QUARANTINED.value,
            "reason": reason,
            "follow_up": follow_up,
        }
        try:
            self.backends.blackboard.put_note(
                orchestration_id, note_key(agent.name, agent.version), value, author=REFLECTION_SOURCE
            )
        except Exception:
            logger.exception("orchestration_id=<%s> | could not note the quarantine", orchestration_id)

    def _publish(
        self,
        agent: AgentManifest,
        reason: str,
        by: Literal["policy", "person"],
        orchestration_id: str | None,
        request: FabricationRequest | None,
    ) -> None:
        detail = AgentQuarantined(
            name=agent.name,
            version=agent.version,
            origin=agent.origin,
            reason=reason,
            by=by,
            orchestration_id=orchestration_id,
            refabrication_requested=request is not None,
            invocations=agent.stats.invocations,
            failure_rate=agent.stats.failure_rate,
        )
        try:
            self.backends.bus.publish([detail.to_event()])
        except Exception:
            logger.exception("agent=<%s> | could not publish agent.quarantined", agent.ref)
