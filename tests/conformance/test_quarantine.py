"""A record that fails to load is reported and skipped, never stops a listing; doctor's tools find and set it aside."""

from __future__ import annotations

import pytest

from blackboard import Backends, OrchestrationStatus, TaskState, UnreadableRecordError
from blackboard.quarantine import Unreadable
from tests.conformance import corrupt
from tests.conformance.builders import manifest, started, with_wave

DAMAGE = sorted(corrupt.DAMAGE)


@pytest.mark.parametrize("damage", DAMAGE)
def test_listing_orchestrations_skips_an_unreadable_one(backends: Backends, damage: str) -> None:
    board = backends.blackboard
    first, bad, last = (started(board) for _ in range(3))
    corrupt.orchestration(backends, bad.id, corrupt.DAMAGE[damage])
    assert {o.id for o in board.list_orchestrations()} == {first.id, last.id}
    assert {o.id for o in board.list_orchestrations(OrchestrationStatus.RUNNING)} == {first.id, last.id}
    assert board.quarantine.counts["orchestration"] >= 1
    with pytest.raises(UnreadableRecordError) as raised:
        board.get_orchestration(bad.id)
    assert raised.value.key == (bad.id,) and not raised.value.retryable
    assert [(u.kind, u.key) for u in board.find_unreadable()] == [("orchestration", (bad.id,))]


@pytest.mark.parametrize("damage", DAMAGE)
def test_task_listings_skip_an_unreadable_task(backends: Backends, damage: str) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 3)
    corrupt.task(backends, orchestration.id, tasks[1].task_id, corrupt.DAMAGE[damage])
    readable = [tasks[0].task_id, tasks[2].task_id]
    assert [t.task_id for t in board.list_tasks(orchestration.id)] == readable
    assert [t.task_id for t in board.list_tasks(orchestration.id, wave=1)] == readable
    assert sorted(t.task_id for t in board.find_tasks([TaskState.PENDING])) == readable
    assert board.quarantine.counts["task"] >= 1
    with pytest.raises(UnreadableRecordError):
        board.get_task(orchestration.id, tasks[1].task_id)
    assert [u.key for u in board.find_unreadable()] == [(orchestration.id, tasks[1].task_id)]


def test_notes_skip_an_unreadable_note(backends: Backends) -> None:
    board = backends.blackboard
    orchestration = started(board)
    for key in ("a", "b", "c"):
        board.put_note(orchestration.id, key, {"key": key})
    corrupt.note(backends, orchestration.id, "b", corrupt.DAMAGE["invalid-json"])
    assert [n.key for n in board.notes(orchestration.id)] == ["a", "c"]
    with pytest.raises(UnreadableRecordError):
        board.get_note(orchestration.id, "b")
    assert [u.key for u in board.find_unreadable()] == [(orchestration.id, "b")]


@pytest.mark.parametrize("damage", DAMAGE)
def test_registry_listings_skip_an_unreadable_manifest(backends: Backends, damage: str) -> None:
    registry = backends.registry
    for name in ("alpha", "beta", "gamma"):
        registry.put(manifest(name))
    registry.put(manifest("beta", 2))
    corrupt.agent(backends, "beta", 1, corrupt.DAMAGE[damage])
    assert [(m.name, m.version) for m in registry.list_agents()] == [("alpha", 1), ("beta", 2), ("gamma", 1)]
    assert [(m.name, m.version) for m in registry.list_agents(page_size=1)] == [
        ("alpha", 1),
        ("beta", 2),
        ("gamma", 1),
    ]
    assert sorted(registry.active_agents()) == ["alpha", "beta", "gamma"]
    assert [m.version for m in registry.versions("beta")] == [2]
    assert registry.quarantine.counts["agent"] >= 1
    with pytest.raises(UnreadableRecordError):
        registry.get("beta", 1)
    assert [u.key for u in registry.find_unreadable()] == [("beta", "1")]


def test_set_aside_replaces_an_unreadable_orchestration_by_a_failed_one(backends: Backends) -> None:
    board = backends.blackboard
    bad = started(board, "event-1")
    corrupt.orchestration(backends, bad.id, corrupt.DAMAGE["invalid-json"])
    (entry,) = board.find_unreadable()
    assert board.set_aside(entry)
    repaired = board.get_orchestration(bad.id)
    assert repaired.status is OrchestrationStatus.FAILED
    assert f"unreadable orchestration {bad.id}" in (repaired.error or "") and entry.reason in (repaired.error or "")
    assert board.find_orchestration("event-1") == repaired  # the event still maps to it: it is not run again
    assert board.find_unreadable() == []
    assert not board.set_aside(Unreadable("orchestration", ("missing",), "gone"))


def test_set_aside_moves_an_unreadable_task_and_fails_its_orchestration(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 2)
    corrupt.task(backends, orchestration.id, tasks[0].task_id, corrupt.DAMAGE["newer-schema"])
    (entry,) = board.find_unreadable()
    assert board.set_aside(entry)
    assert [t.task_id for t in board.list_tasks(orchestration.id)] == [tasks[1].task_id]
    failed = board.get_orchestration(orchestration.id)
    assert failed.status is OrchestrationStatus.FAILED and tasks[0].task_id in (failed.error or "")
    assert board.find_unreadable() == []
    assert not board.set_aside(entry)


def test_set_aside_leaves_a_readable_record_alone(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    board.put_note(orchestration.id, "k", 1)
    for entry in (
        Unreadable("orchestration", (orchestration.id,), "was unreadable"),
        Unreadable("task", (orchestration.id, tasks[0].task_id), "was unreadable"),
        Unreadable("note", (orchestration.id, "k"), "was unreadable"),
    ):
        assert not board.set_aside(entry)
    assert board.get_orchestration(orchestration.id).status is OrchestrationStatus.RUNNING
    assert [t.task_id for t in board.list_tasks(orchestration.id)] == [tasks[0].task_id]
    assert [n.key for n in board.notes(orchestration.id)] == ["k"]
