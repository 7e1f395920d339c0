"""Conformance: the Registry port, on every backend."""

from __future__ import annotations

import pytest

from blackboard import (
    AgentNotFoundError,
    AgentState,
    Backends,
    InvalidTransitionError,
    RecordValidationError,
    ReservedNameError,
    TaskState,
    VersionConflictError,
)
from blackboard.reactions import ReactiveAgents
from blackboard.records import AgentStats, duration_bucket
from tests.conformance.builders import manifest
from wrapper.matching import Matcher


def test_put_writes_a_version_once(backends: Backends) -> None:
    registry = backends.registry
    first = registry.put(manifest(code=b"v1"))
    assert first.applied and registry.get("burger_cook", 1) == first.record
    again = registry.put(manifest(code=b"an attempt to overwrite"))
    assert not again.applied
    assert again.record.code == first.record.code
    assert registry.get("burger_cook", 1).code == first.record.code


def test_versions_are_appended_one_at_a_time(backends: Backends) -> None:
    registry = backends.registry
    assert registry.next_version("burger_cook") == 1
    with pytest.raises(VersionConflictError) as raised:
        registry.put(manifest(version=2))
    assert raised.value.expected == 1
    registry.put(manifest(version=1, code=b"v1"))
    registry.put(manifest(version=2, code=b"v2"))
    assert registry.next_version("burger_cook") == 3
    assert [m.version for m in registry.versions("burger_cook")] == [1, 2]
    assert registry.versions("unknown") == []


@pytest.mark.parametrize("name", ["fabricate", "arbiter", "blackboard"])
def test_reserved_names_are_refused(backends: Backends, name: str) -> None:
    with pytest.raises(ReservedNameError):
        backends.registry.put(manifest(name=name))
    assert backends.registry.versions(name) == []


def test_new_version_must_start_with_empty_stats(backends: Backends) -> None:
    forged = manifest().model_copy(update={"stats": AgentStats(invocations=1000, succeeded=1000)})
    with pytest.raises(RecordValidationError, match="stats"):
        backends.registry.put(forged)


def test_get_unknown_raises(backends: Backends) -> None:
    with pytest.raises(AgentNotFoundError):
        backends.registry.get("nobody", 1)
    with pytest.raises(AgentNotFoundError):
        backends.registry.active("nobody")


def test_lifecycle_is_compare_and_set(backends: Backends) -> None:
    registry = backends.registry
    registry.put(manifest(version=1, code=b"v1"))
    registry.put(manifest(version=2, code=b"v2"))
    assert registry.active("burger_cook").version == 2
    moved = registry.set_state("burger_cook", 2, AgentState.ACTIVE, AgentState.QUARANTINED)
    assert moved.applied and moved.record.state is AgentState.QUARANTINED
    stale = registry.set_state("burger_cook", 2, AgentState.ACTIVE, AgentState.RETIRED)
    assert not stale.applied and stale.record.state is AgentState.QUARANTINED
    assert registry.active("burger_cook").version == 1
    with pytest.raises(InvalidTransitionError):
        registry.set_state("burger_cook", 1, AgentState.ACTIVE, AgentState.CANDIDATE)
    with pytest.raises(AgentNotFoundError):
        registry.set_state("burger_cook", 9, AgentState.ACTIVE, AgentState.RETIRED)


def test_listing_paginates_in_name_version_order(backends: Backends) -> None:
    registry = backends.registry
    names = [f"agent_{i:03d}" for i in range(23)]
    for name in reversed(names):
        registry.put(manifest(name=name, code=name.encode()))
    registry.put(manifest(name="agent_005", version=2, code=b"again"))
    registry.set_state("agent_007", 1, AgentState.ACTIVE, AgentState.RETIRED)
    listed = [(m.name, m.version) for m in registry.list_agents(page_size=5)]
    assert listed == sorted([(n, 1) for n in names] + [("agent_005", 2)])
    active = [m.name for m in registry.list_agents(AgentState.ACTIVE, page_size=4)]
    assert "agent_007" not in active and len(active) == 23
    assert [m.name for m in registry.list_agents(AgentState.RETIRED)] == ["agent_007"]


def test_stats_and_embedding(backends: Backends) -> None:
    registry = backends.registry
    registry.put(manifest())
    registry.record_completion("burger_cook", 1, TaskState.SUCCEEDED, 10.0, 5)
    registry.record_completion("burger_cook", 1, TaskState.TIMED_OUT, 30.0, 0)
    registry.record_completion("burger_cook", 1, TaskState.FAILED, 1.0, 2)
    stats = registry.get("burger_cook", 1).stats
    buckets = [0] * len(stats.duration_buckets)
    for duration in (10.0, 30.0, 1.0):
        buckets[duration_bucket(duration)] += 1
    assert stats == AgentStats(
        invocations=3, succeeded=1, failed=1, timed_out=1, total_ms=41.0, tokens=7, duration_buckets=buckets
    )
    updated = registry.set_embedding("burger_cook", 1, [0.5, -0.25, 1], "minilm")
    assert updated.embedding == [0.5, -0.25, 1.0] and updated.embedding_model == "minilm"
    assert updated.stats == stats
    with pytest.raises(RecordValidationError):
        registry.set_embedding("burger_cook", 1, [], "minilm")
    with pytest.raises(AgentNotFoundError):
        registry.record_completion("nobody", 1, TaskState.SUCCEEDED, 1.0, 0)


def test_revision_changes_with_matching_relevant_writes_only(backends: Backends) -> None:
    registry = backends.registry
    start = registry.revision()
    registry.put(manifest())
    after_put = registry.revision()
    registry.record_completion("burger_cook", 1, TaskState.SUCCEEDED, 1.0, 0)
    assert registry.revision() == after_put != start  # stats do not count
    registry.set_embedding("burger_cook", 1, [1.0], "m")
    after_embedding = registry.revision()
    registry.set_state("burger_cook", 1, AgentState.ACTIVE, AgentState.RETIRED)
    assert len({start, after_put, after_embedding, registry.revision()}) == 4
    registry.put(manifest())  # a duplicate put changes nothing
    registry.set_state("burger_cook", 1, AgentState.ACTIVE, AgentState.RETIRED)  # a stale change neither
    assert registry.revision() == registry.revision()


def test_readers_share_one_listing_of_the_active_agents_per_revision(
    backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = backends.registry
    registry.put(manifest(code=b"v1"))
    listings: list[object] = []
    entries = registry._entries
    monkeypatch.setattr(registry, "_entries", lambda *a, **k: (listings.append(a), entries(*a, **k))[1])
    revision, active = registry.current_active()
    assert revision == registry.revision() and list(active) == ["burger_cook"]
    ReactiveAgents(registry, "bus").current()
    Matcher(registry).refresh()
    assert registry.current_active()[1] == active and len(listings) == 1  # one listing for every reader
    registry.put(manifest(name="fryer", code=b"fryer"))
    assert sorted(registry.current_active()[1]) == ["burger_cook", "fryer"] and len(listings) == 2
    registry.record_completion("fryer", 1, TaskState.SUCCEEDED, 1.0, 0)  # stats change no listing
    registry.current_active()
    assert len(listings) == 2


def test_quarantined_versions_are_not_offered(backends: Backends) -> None:
    registry = backends.registry
    registry.put(manifest(version=1, code=b"v1"))
    registry.put(manifest(name="fryer", code=b"fryer"))
    registry.set_state("fryer", 1, AgentState.ACTIVE, AgentState.QUARANTINED)
    assert set(registry.active_agents()) == {"burger_cook"}  # a name with no active version disappears
    registry.put(manifest(version=2, code=b"v2"))
    registry.set_state("burger_cook", 2, AgentState.ACTIVE, AgentState.QUARANTINED)
    assert registry.active_agents()["burger_cook"].version == 1  # the older active version is offered instead
    registry.set_state("burger_cook", 1, AgentState.ACTIVE, AgentState.QUARANTINED)
    assert registry.active_agents() == {}
    assert [m.state for m in registry.versions("burger_cook")] == [AgentState.QUARANTINED] * 2  # history kept
