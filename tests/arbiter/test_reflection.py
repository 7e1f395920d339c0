"""Reflection: the policy, quarantine exactly once under races, failure evidence, and who gets rewritten."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from arbiter.exceptions import UsageError
from arbiter.reflection import (
    QUARANTINED_DETAIL_TYPE,
    REFLECTION_SOURCE,
    AgentQuarantined,
    Quarantine,
    ReflectionPolicy,
    Reflector,
    failure_evidence,
    note_key,
)
from blackboard import AgentOrigin, AgentState, AgentStats, Backends, Event, FabricationRequest, Task
from blackboard.ports.registry import StatsDelta
from tests.conformance.backends import BACKENDS, SERVER_BACKENDS, open_backends
from tests.conformance.builders import failed, manifest, ok, started, tasks_for, timed_out

THREADS = 8
PROCESSES = 4


@pytest.fixture(params=BACKENDS)
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backends]:
    if request.param in SERVER_BACKENDS:
        request.getfixturevalue("dynamodb_local")
    opened = open_backends(request.param, tmp_path)
    yield opened
    opened.close()


def _agent(backends: Backends, origin: AgentOrigin = AgentOrigin.FABRICATOR) -> None:
    backends.registry.put(manifest(name="cook").model_copy(update={"origin": origin}))


def _wave(backends: Backends, failures: int, successes: int = 0) -> tuple[str, list[Task]]:
    """An orchestration whose one wave of cook@1 tasks ended: ``failures`` failed (the last one timed out)."""
    board = backends.blackboard
    orchestration = started(board)
    tasks = tasks_for(orchestration, failures + successes, max_attempts=1)
    board.add_wave(orchestration, tasks)
    delta = StatsDelta()
    for index, task in enumerate(tasks):
        board.claim(orchestration.id, task.task_id, 1)
        result = ok() if index >= failures else timed_out() if index == failures - 1 else failed(f"boom {index}")
        board.complete(orchestration.id, task.task_id, 1, result)
        delta = delta + StatsDelta.of(result.status, result.duration_ms, 0)
    backends.registry.add_stats("cook", 1, delta)
    return orchestration.id, board.list_tasks(orchestration.id)


def _events(backends: Backends) -> list[Event]:
    seen: list[Event] = []
    backends.bus.subscribe({"source": [REFLECTION_SOURCE]}, seen.append, name="test")
    return seen


@pytest.mark.parametrize(
    ("invocations", "failures", "quarantined"),
    [(4, 4, False), (5, 2, False), (5, 3, True), (10, 6, True), (10, 5, False)],
)
def test_verdict_needs_enough_invocations_and_failures(invocations: int, failures: int, quarantined: bool) -> None:
    stats = AgentStats(invocations=invocations, succeeded=invocations - failures, failed=failures - 1, timed_out=1)
    reason = ReflectionPolicy().verdict(stats)
    assert (reason is not None) is quarantined
    if reason is not None:
        assert reason.startswith(f"{failures} of {invocations} invocations failed or timed out")
    assert ReflectionPolicy(enabled=False).verdict(stats) is None


def test_policy_from_the_environment() -> None:
    policy = ReflectionPolicy.from_env(
        {
            "ARBITER_QUARANTINE_MIN_INVOCATIONS": "3",
            "ARBITER_QUARANTINE_FAILURE_RATE": "0.5",
            "ARBITER_REFABRICATE": "all",
            "ARBITER_REFLECTION": "off",
        }
    )
    assert policy == ReflectionPolicy(enabled=False, min_invocations=3, max_failure_rate=0.5, refabricate="all")
    assert ReflectionPolicy.from_env({}) == ReflectionPolicy()
    with pytest.raises(UsageError, match="ARBITER_QUARANTINE_FAILURE_RATE must be a number"):
        ReflectionPolicy.from_env({"ARBITER_QUARANTINE_FAILURE_RATE": "lots"})
    with pytest.raises(UsageError, match=r"max_failure_rate must be in \(0, 1\]"):
        ReflectionPolicy.from_env({"ARBITER_QUARANTINE_FAILURE_RATE": "60"})
    with pytest.raises(UsageError, match="refabricate must be"):
        ReflectionPolicy.from_env({"ARBITER_REFABRICATE": "sometimes"})
    with pytest.raises(UsageError, match="ARBITER_REFLECTION must be 'on' or 'off'"):
        ReflectionPolicy.from_env({"ARBITER_REFLECTION": "yes"})


def test_who_is_rewritten() -> None:
    default, everyone, nobody = (
        ReflectionPolicy(),
        ReflectionPolicy(refabricate="all"),
        ReflectionPolicy(refabricate="off"),
    )
    assert default.refabricates(AgentOrigin.FABRICATOR) and not default.refabricates(AgentOrigin.USER)
    assert everyone.refabricates(AgentOrigin.USER) and not everyone.refabricates(AgentOrigin.BUILTIN)
    assert not nobody.refabricates(AgentOrigin.FABRICATOR)


def test_racing_reflectors_quarantine_once_and_ask_for_one_new_version(backends: Backends) -> None:
    _agent(backends)
    orchestration_id, tasks = _wave(backends, failures=6, successes=1)
    requests: list[FabricationRequest] = []
    events = _events(backends)
    reflectors = [Reflector(backends, ReflectionPolicy(), requests.append) for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    results: list[list[Quarantine]] = [[] for _ in range(THREADS)]

    def reflect(index: int) -> None:
        barrier.wait()
        results[index] = reflectors[index].after_stats(orchestration_id, tasks, [("cook", 1)])

    threads = [threading.Thread(target=reflect, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = [q for found in results for q in found]
    assert len(done) == 1 and len(requests) == 1 and len(events) == 1
    assert backends.registry.get("cook", 1).state is AgentState.QUARANTINED
    assert "cook" not in backends.registry.active_agents()
    (request,) = requests
    assert (request.replaces, request.replaces_version, request.orchestration_id) == ("cook", 1, orchestration_id)
    assert request.capability == "cook makes things" and request.inputs == {"item": "string"}
    assert len(request.evidence) == 5
    assert {e["status"] for e in request.evidence} == {"failed", "timed_out"}
    assert all(e["input"].keys() == {"i"} and e["error"]["message"] for e in request.evidence)
    detail = AgentQuarantined.parse(events[0].detail)
    assert events[0].detail_type == QUARANTINED_DETAIL_TYPE
    assert (detail.name, detail.version, detail.by, detail.refabrication_requested) == ("cook", 1, "policy", True)
    assert detail.invocations == 7 and round(detail.failure_rate, 2) == 0.86
    note = backends.blackboard.get_note(orchestration_id, note_key("cook", 1))
    assert note is not None and note.author == REFLECTION_SOURCE
    assert note.value["reason"].startswith("6 of 7 invocations") and "cook@2" in note.value["follow_up"]


def test_a_healthy_agent_is_left_alone(backends: Backends) -> None:
    _agent(backends)
    orchestration_id, tasks = _wave(backends, failures=2, successes=4)
    requests: list[FabricationRequest] = []
    assert (
        Reflector(backends, ReflectionPolicy(), requests.append).after_stats(orchestration_id, tasks, [("cook", 1)])
        == []
    )
    assert backends.registry.get("cook", 1).state is AgentState.ACTIVE and requests == []


def test_a_user_agent_is_quarantined_but_not_rewritten_unless_configured(backends: Backends) -> None:
    _agent(backends, AgentOrigin.USER)
    orchestration_id, tasks = _wave(backends, failures=5)
    requests: list[FabricationRequest] = []
    (done,) = Reflector(backends, ReflectionPolicy(), requests.append).after_stats(
        orchestration_id, tasks, [("cook", 1)]
    )
    assert done.request is None and requests == []
    note = backends.blackboard.get_note(orchestration_id, note_key("cook", 1))
    assert note is not None and "not rewritten automatically" in note.value["follow_up"]
    backends.registry.set_state("cook", 1, AgentState.QUARANTINED, AgentState.ACTIVE)
    (again,) = Reflector(backends, ReflectionPolicy(refabricate="all"), requests.append).after_stats(
        orchestration_id, tasks, [("cook", 1)]
    )
    assert again.request is not None and len(requests) == 1


def test_evidence_takes_the_newest_failures_from_the_blackboard_too(backends: Backends) -> None:
    _agent(backends)
    older_id, _ = _wave(backends, failures=2)
    newer_id, newer = _wave(backends, failures=1, successes=2)
    evidence = failure_evidence(backends, "cook", 1, newer, limit=3)
    assert [e["orchestration_id"] for e in evidence] == [newer_id, older_id, older_id]
    assert evidence[0]["status"] == "timed_out" and evidence[0]["error"]["type"] == "Timeout"
    assert failure_evidence(backends, "cook", 1, newer, limit=0) == []
    assert failure_evidence(backends, "cook", 2, newer) == []


def test_a_quarantine_by_a_person_asks_for_nothing(backends: Backends) -> None:
    _agent(backends)
    requests: list[FabricationRequest] = []
    events = _events(backends)
    done = Reflector(backends, ReflectionPolicy(), requests.append).quarantine("cook", 1, "wrong totals", by="person")
    assert done is not None and done.request is None and requests == []
    assert AgentQuarantined.parse(events[0].detail).reason == "wrong totals"
    assert Reflector(backends).quarantine("cook", 1, "again", by="person") is None  # already quarantined


def _reflect_in_process(root: str, orchestration_id: str) -> tuple[int, int]:
    backends = open_backends("sqlite", Path(root))
    try:
        requests: list[FabricationRequest] = []
        tasks = backends.blackboard.list_tasks(orchestration_id)
        done = Reflector(backends, ReflectionPolicy(), requests.append).after_stats(
            orchestration_id, tasks, [("cook", 1)]
        )
        return len(done), len(requests)
    finally:
        backends.close()


def test_racing_processes_quarantine_once(tmp_path: Path) -> None:
    backends = open_backends("sqlite", tmp_path)
    _agent(backends)
    orchestration_id, _ = _wave(backends, failures=5)
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        outcomes = pool.starmap(_reflect_in_process, [(str(tmp_path), orchestration_id)] * PROCESSES)
    assert sum(done for done, _ in outcomes) == 1 and sum(sent for _, sent in outcomes) == 1
    assert backends.registry.get("cook", 1).state is AgentState.QUARANTINED
    backends.close()


def test_stats_that_give_no_verdict_are_judged_without_reading_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from blackboard import memory_backends

    backends = memory_backends()
    _agent(backends)
    orchestration_id, tasks = _wave(backends, failures=1, successes=4)
    reads: list[tuple[str, int]] = []
    original = backends.registry.get
    monkeypatch.setattr(backends.registry, "get", lambda n, v: reads.append((n, v)) or original(n, v))
    reflector = Reflector(backends, ReflectionPolicy())
    healthy = original("cook", 1).stats
    assert reflector.after_stats(orchestration_id, tasks, [("cook", 1)], {("cook", 1): healthy}) == []
    assert reads == []
    # Stats that give a verdict are read again: the version's state decides too.
    failing = backends.registry.add_stats("cook", 1, StatsDelta(invocations=8, failed=8))  # 9 of 13 failed
    (done,) = reflector.after_stats(orchestration_id, tasks, [("cook", 1)], {("cook", 1): failing})
    assert reads[:1] == [("cook", 1)] and done.agent.name == "cook"
    assert original("cook", 1).state is AgentState.QUARANTINED
