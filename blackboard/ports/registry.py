"""The ``Registry`` port: agent manifests, versions, lifecycle state and stats.

A ``name@version`` is written once and never overwritten. Versions of a name are appended one at a time (1, 2, 3...).
Reserved names cannot be taken. Lifecycle changes are compare-and-set on the state; stats are atomic increments.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from blackboard.exceptions import AgentNotFoundError, RecordValidationError, ReservedNameError, VersionConflictError
from blackboard.ports.blackboard import Applied
from blackboard.quarantine import QuarantineLog, Unreadable
from blackboard.records import (
    DURATION_BUCKETS_MS,
    RESERVED_AGENT_NAMES,
    AgentManifest,
    AgentStats,
    duration_bucket,
)
from blackboard.states import AgentState, TaskState, check_agent_transition

__all__ = ["BUCKET_COUNT", "Registry", "StatsDelta"]

#: How many counts a stats histogram has: one per bound of ``DURATION_BUCKETS_MS`` plus the overflow bucket.
BUCKET_COUNT = len(DURATION_BUCKETS_MS) + 1


@dataclass(frozen=True, slots=True)
class StatsDelta:
    """Increments to add to an agent version's stats in one atomic step.

    ``duration_buckets`` has one count per bucket of :data:`~blackboard.records.DURATION_BUCKETS_MS` plus the
    overflow bucket (an empty tuple means no durations to add); adapters add it element by element.
    ``example_checks`` counts acceptance examples the version reproduced.
    """

    invocations: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    total_ms: float = 0.0
    tokens: int = 0
    duration_buckets: tuple[int, ...] = ()
    example_checks: int = 0

    def __post_init__(self) -> None:
        if self.duration_buckets and len(self.duration_buckets) != BUCKET_COUNT:
            raise ValueError(f"duration_buckets needs {BUCKET_COUNT} counts, got {len(self.duration_buckets)}")

    @classmethod
    def of(cls, status: TaskState, duration_ms: float, tokens: int) -> StatsDelta:
        """The delta of one finished invocation."""
        buckets = [0] * BUCKET_COUNT
        buckets[duration_bucket(duration_ms)] = 1
        return cls(
            invocations=1,
            succeeded=int(status is TaskState.SUCCEEDED),
            failed=int(status is TaskState.FAILED),
            timed_out=int(status is TaskState.TIMED_OUT),
            total_ms=duration_ms,
            tokens=tokens,
            duration_buckets=tuple(buckets),
        )

    @property
    def buckets(self) -> tuple[int, ...]:
        """``duration_buckets`` at full length (zeros when the delta has none)."""
        return self.duration_buckets or (0,) * BUCKET_COUNT

    def applied_to(self, stats: AgentStats) -> AgentStats:
        """``stats`` with this delta added (what an adapter that reads, adds and writes under a lock stores)."""
        return AgentStats(
            invocations=stats.invocations + self.invocations,
            succeeded=stats.succeeded + self.succeeded,
            failed=stats.failed + self.failed,
            timed_out=stats.timed_out + self.timed_out,
            total_ms=stats.total_ms + self.total_ms,
            tokens=stats.tokens + self.tokens,
            duration_buckets=[a + b for a, b in zip(stats.duration_buckets, self.buckets, strict=True)],
            example_checks=stats.example_checks + self.example_checks,
        )

    def __add__(self, other: StatsDelta) -> StatsDelta:
        buckets = () if not (self.duration_buckets or other.duration_buckets) else self._sum(other)
        return StatsDelta(
            self.invocations + other.invocations,
            self.succeeded + other.succeeded,
            self.failed + other.failed,
            self.timed_out + other.timed_out,
            self.total_ms + other.total_ms,
            self.tokens + other.tokens,
            buckets,
            self.example_checks + other.example_checks,
        )

    def _sum(self, other: StatsDelta) -> tuple[int, ...]:
        return tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True))


@dataclass
class _ActiveCache:
    """The last listing of the active agents and the revision it was read at (see :meth:`Registry.current_active`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    revision: int | None = None
    agents: dict[str, AgentManifest] = field(default_factory=dict)


class Registry(abc.ABC):
    """Agent manifests. Subclasses implement the ``_``-prefixed primitives."""

    def put(self, manifest: AgentManifest) -> Applied[AgentManifest]:
        """Write a new agent version.

        Returns:
            ``applied=True`` with the stored manifest, or ``applied=False`` with the version already stored under
            that ``name@version`` (never overwritten).

        Raises:
            ReservedNameError: the name belongs to the system.
            VersionConflictError: the version is not the next one for this name.
        """
        if manifest.name in RESERVED_AGENT_NAMES:
            raise ReservedNameError(manifest.name)
        if manifest.stats != AgentStats():
            raise RecordValidationError("AgentManifest", "stats", "a new version starts with empty stats")
        expected = self.next_version(manifest.name)
        if manifest.version < expected:
            return Applied(False, self.get(manifest.name, manifest.version))
        if manifest.version > expected:
            raise VersionConflictError(manifest.name, manifest.version, expected)
        if self._insert(manifest):
            return Applied(True, manifest)
        return Applied(False, self.get(manifest.name, manifest.version))

    def next_version(self, name: str) -> int:
        """Return the version number the next ``put`` of ``name`` must carry (1 for a new name)."""
        return self._latest_version(name) + 1

    def get(self, name: str, version: int) -> AgentManifest:
        """Return one agent version with its current state and stats.

        Raises:
            AgentNotFoundError: when there is no such version.
        """
        manifest = self._get(name, version)
        if manifest is None:
            raise AgentNotFoundError(name, version)
        return manifest

    def active(self, name: str) -> AgentManifest:
        """Return the newest ``active`` version of ``name``.

        Raises:
            AgentNotFoundError: when no version of ``name`` is active.
        """
        for manifest in reversed(self.versions(name)):
            if manifest.state is AgentState.ACTIVE:
                return manifest
        raise AgentNotFoundError(name)

    @functools.cached_property
    def quarantine(self) -> QuarantineLog:
        """The unreadable manifests this instance skipped, counted (each also logged with its key)."""
        return QuarantineLog()

    def versions(self, name: str) -> list[AgentManifest]:
        """Return every version of ``name``, oldest first (empty if the name is unknown; unreadable ones skipped)."""
        return self.quarantine.readable(self._versions(name))

    def list_agents(self, state: AgentState | None = None, *, page_size: int = 100) -> Iterator[AgentManifest]:
        """Yield every agent version (in ``state`` if given), ordered by name then version, page by page.

        A manifest that fails to load is skipped and reported (see :attr:`quarantine`), never stops the listing.
        """
        yield from self.quarantine.skip(self._entries(state, page_size))

    def find_unreadable(self) -> list[Unreadable]:
        """Every agent manifest that fails to load (``arbiter doctor`` lists them)."""
        return [entry for entry in self._entries(None, 100) if isinstance(entry, Unreadable)]

    def _entries(self, state: AgentState | None, page_size: int) -> Iterator[AgentManifest | Unreadable]:
        cursor: tuple[str, int] | None = None
        while True:
            page = self._page(state, cursor, page_size)
            yield from page
            if len(page) < page_size:
                return
            last = page[-1]
            cursor = (last.key[0], int(last.key[1])) if isinstance(last, Unreadable) else (last.name, last.version)

    def active_agents(self) -> dict[str, AgentManifest]:
        """The newest active version of every agent, by name (what the planner and the matcher offer)."""
        latest: dict[str, AgentManifest] = {}
        for manifest in self.list_agents(AgentState.ACTIVE):
            latest[manifest.name] = manifest  # listed by (name, version): the last one is the newest
        return latest

    def current_active(self) -> tuple[int, dict[str, AgentManifest]]:
        """The :meth:`revision` and :meth:`active_agents` as of it, listed again only when the revision changed.

        Every reader of this instance shares one listing per revision (the matcher, the trigger lookups): one
        revision read per call, and a listing only after a change. The mapping returned is shared: do not change it.
        A write between the revision read and the listing leaves a listing newer than its revision, which the next
        call replaces (the revision it reads differs), never an older one.
        """
        revision = self.revision()
        cache = self._active_cache
        with cache.lock:
            if cache.revision == revision:
                return revision, cache.agents
        agents = self.active_agents()
        with cache.lock:
            cache.revision, cache.agents = revision, agents
        return revision, agents

    @functools.cached_property
    def _active_cache(self) -> _ActiveCache:
        return _ActiveCache()

    def set_state(self, name: str, version: int, source: AgentState, target: AgentState) -> Applied[AgentManifest]:
        """Move an agent version from ``source`` to ``target`` if it is still in ``source``.

        Raises:
            InvalidTransitionError: the lifecycle never allows ``source → target``.
            AgentNotFoundError: there is no such version.
        """
        check_agent_transition(source, target)
        applied = self._cas_state(name, version, source, target)
        return Applied(applied, self.get(name, version))

    def record_completion(self, name: str, version: int, status: TaskState, duration_ms: float, tokens: int) -> None:
        """Count one finished invocation in the version's stats, atomically."""
        self._add_stats(name, version, StatsDelta.of(status, duration_ms, tokens))

    def add_stats(self, name: str, version: int, delta: StatsDelta) -> AgentStats:
        """Add several invocations' counts to the version's stats in one atomic update; return the stats after it.

        The stats returned are the ones this update produced (another writer's later update is not in them): what
        reflection judges without reading the manifest again.
        """
        return self._add_stats(name, version, delta)

    def revision(self) -> int:
        """A number that changes whenever a version is added, changes state or gets a new embedding (not on stats).

        Caches (the capability matcher) compare it to know when to read the registry again. Within
        :meth:`one_revision` a thread reads it once.
        """
        pinned = self._pinned.__dict__
        if pinned.get("depth") and pinned.get("revision") is not None:
            return int(pinned["revision"])
        revision = self._revision()
        if pinned.get("depth"):
            pinned["revision"] = revision
        return revision

    @contextlib.contextmanager
    def one_revision(self) -> Iterator[None]:
        """Within the block, this thread reads :meth:`revision` once and its later calls return that same value.

        For one short unit of work that reads the registry from several places (an event's first planning turn and
        its bus-trigger check): they see the registry as of the same moment, for one read. A version written during
        the block is seen from the next block (or call outside one) on. Blocks nest; the outermost one decides.
        """
        pinned = self._pinned.__dict__
        pinned["depth"] = pinned.get("depth", 0) + 1
        try:
            yield
        finally:
            pinned["depth"] -= 1
            if not pinned["depth"]:
                pinned.pop("revision", None)

    @functools.cached_property
    def _pinned(self) -> threading.local:
        return threading.local()

    def set_embedding(self, name: str, version: int, embedding: Sequence[float], model: str) -> AgentManifest:
        """Store the description embedding of an agent version (the only content that may change after put)."""
        if not embedding:
            raise RecordValidationError("AgentManifest", "embedding", "an embedding has at least one dimension")
        self._set_embedding(name, version, [float(x) for x in embedding], model)
        return self.get(name, version)

    # ---------------------------------------------------------------- primitives

    @abc.abstractmethod
    def _revision(self) -> int:
        """The change counter (see :meth:`revision`); writes bump it in the same atomic step as the change."""

    @abc.abstractmethod
    def _insert(self, manifest: AgentManifest) -> bool:
        """Insert unless ``name@version`` exists; return whether it was inserted."""

    @abc.abstractmethod
    def _latest_version(self, name: str) -> int:
        """Return the highest stored version of ``name``, 0 if none."""

    @abc.abstractmethod
    def _get(self, name: str, version: int) -> AgentManifest | None:
        """Return the version with current state and stats, or ``None``."""

    @abc.abstractmethod
    def _versions(self, name: str) -> list[AgentManifest | Unreadable]:
        """Return every version of ``name``, oldest first."""

    @abc.abstractmethod
    def _page(
        self, state: AgentState | None, after: tuple[str, int] | None, limit: int
    ) -> list[AgentManifest | Unreadable]:
        """Return up to ``limit`` versions ordered by (name, version), strictly after ``after``."""

    @abc.abstractmethod
    def _cas_state(self, name: str, version: int, source: AgentState, target: AgentState) -> bool:
        """Set the state if it is ``source``; raise ``AgentNotFoundError`` if the version does not exist."""

    @abc.abstractmethod
    def _add_stats(self, name: str, version: int, delta: StatsDelta) -> AgentStats:
        """Add ``delta`` to the stats atomically; raise ``AgentNotFoundError`` if the version does not exist."""

    @abc.abstractmethod
    def _set_embedding(self, name: str, version: int, embedding: list[float], model: str) -> None:
        """Store the embedding; raise ``AgentNotFoundError`` if the version does not exist."""
