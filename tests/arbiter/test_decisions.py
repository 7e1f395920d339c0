"""Decisions about agent versions: the same functions for the CLI and the dashboard, each recorded once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from arbiter import decisions
from arbiter.decisions import DecisionConflictError
from arbiter.exceptions import UsageError
from blackboard import AgentState, memory_backends
from tests.arbiter.test_cli import invoke
from tests.arbiter.ui_support import seed


def test_approve_is_recorded_with_who_when_and_why() -> None:
    backends = memory_backends()
    seed(backends)
    manifest = decisions.approve(backends, "counter", 2, by="ada via ui", reason="read the code")
    assert manifest.state is AgentState.ACTIVE
    (decision,) = decisions.decision_history(backends, "counter")
    assert (decision.action, decision.version, decision.state, decision.by, decision.reason) == (
        "approve",
        2,
        "active",
        "ada via ui",
        "read the code",
    )
    (note,) = backends.blackboard.notes(decisions.decision_log_id("counter"))
    assert note.author == "ada via ui"


def test_two_approvals_at_once_one_wins_the_other_is_told_it_is_approved_already() -> None:
    backends = memory_backends()
    seed(backends)
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def approve(person: str) -> None:
        start.wait()
        try:
            outcomes.append(decisions.approve(backends, "counter", 2, by=person))
        except DecisionConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("ada", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    conflicts = [o for o in outcomes if isinstance(o, DecisionConflictError)]
    assert len(outcomes) == 2 and len(conflicts) == 1
    assert conflicts[0].state is AgentState.ACTIVE and "already approved" in str(conflicts[0])
    assert len(decisions.decision_history(backends, "counter")) == 1  # only the winner records


def test_reject_needs_a_reason_and_keeps_it() -> None:
    backends = memory_backends()
    seed(backends)
    with pytest.raises(UsageError, match="needs a reason"):
        decisions.reject(backends, "counter", 2, by="ada", reason="  ")
    assert backends.registry.get("counter", 2).state is AgentState.PENDING_APPROVAL
    decisions.reject(backends, "counter", 2, by="ada", reason="uses eval on its input")
    assert backends.registry.get("counter", 2).state is AgentState.RETIRED
    assert decisions.decision_history(backends, "counter")[-1].reason == "uses eval on its input"
    with pytest.raises(DecisionConflictError, match="retired, not pending approval"):
        decisions.approve(backends, "counter", 2, by="bob")


def test_quarantine_release_retire_and_rollback_are_each_recorded() -> None:
    backends = memory_backends()
    seed(backends)
    decisions.approve(backends, "counter", 2, by="ada")
    decisions.quarantine(backends, "counter", 2, by="ada", reason="wrong totals")
    decisions.release(backends, "counter", 2, by="ada")
    assert decisions.rollback(backends, "counter", by="ada").version == 1
    assert decisions.retire(backends, "counter", None, by="ada", reason="not needed") == [1]
    history = decisions.decision_history(backends, "counter")
    assert [(d.action, d.version, d.state) for d in history] == [
        ("approve", 2, "active"),
        ("quarantine", 2, "quarantined"),
        ("release", 2, "active"),
        ("rollback", 1, "active"),
        ("retire", 1, "retired"),
    ]


def test_the_cli_records_its_decisions_too(tmp_path: Path) -> None:
    from blackboard import local_backends

    home = tmp_path / "home"
    backends = local_backends(home)
    seed(backends)
    backends.close()
    code, _, err = invoke("agents", "approve", "counter@2", "--reason", "reviewed", "--home", str(home))
    assert code == 0, err
    code, _, err = invoke("agents", "reject", "counter@2", "--reason", "late", "--home", str(home))
    assert code == 2 and "already approved" in err
    backends = local_backends(home)
    (decision,) = decisions.decision_history(backends, "counter")
    backends.close()
    assert decision.action == "approve" and decision.reason == "reviewed" and decision.by.endswith("via cli")
