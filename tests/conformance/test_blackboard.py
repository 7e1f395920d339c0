"""Conformance: the Blackboard port, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blackboard import (
    Backends,
    Completion,
    InvalidTransitionError,
    Orchestration,
    OrchestrationNotFoundError,
    OrchestrationStatus,
    RecordValidationError,
    TaskNotFoundError,
    TaskState,
)
from blackboard.standing import standing_event, standing_event_id
from tests.conformance.builders import event, failed, ok, started, tasks_for, timed_out, with_wave
from tests.conftest import ManualClock

# ---------------------------------------------------------------- orchestrations


def test_create_is_idempotent_on_event_id(backends: Backends) -> None:
    board = backends.blackboard
    first = board.create_orchestration(Orchestration(event=event("evt-1")))
    again = board.create_orchestration(Orchestration(event=event("evt-1")))
    assert first.applied and first.record.version == 1
    assert not again.applied
    assert again.record.id == first.record.id
    assert board.find_orchestration("evt-1") == first.record
    assert board.find_orchestration("evt-2") is None
    assert [o.id for o in board.list_orchestrations()] == [first.record.id]


def test_a_standing_orchestration_is_created_once_per_event_and_round_trips(backends: Backends) -> None:
    board = backends.blackboard
    published = event("evt-1")
    standing = standing_event(published, "evt-1")
    first = board.create_orchestration(Orchestration(event=standing, triggered_by="evt-1"))
    again = board.create_orchestration(Orchestration(event=standing_event(published, "evt-1"), triggered_by="evt-1"))
    planned = board.create_orchestration(Orchestration(event=published))  # the same event, planned: its own
    assert first.applied and not again.applied and planned.applied
    assert again.record.id == first.record.id != planned.record.id
    stored = board.find_orchestration(standing_event_id("evt-1"))
    assert stored == first.record and stored.standing and stored.triggered_by == "evt-1"
    assert board.get_orchestration(first.record.id) == first.record and not planned.record.standing


def test_get_round_trips_the_record(backends: Backends) -> None:
    created = started(backends.blackboard)
    assert backends.blackboard.get_orchestration(created.id) == created
    with pytest.raises(OrchestrationNotFoundError):
        backends.blackboard.get_orchestration("nope")


def test_update_is_compare_and_set_on_version(backends: Backends) -> None:
    board = backends.blackboard
    current = started(board)
    first = board.update_orchestration(current, conversation=[{"role": "user", "content": [{"text": "hi"}]}])
    stale = board.update_orchestration(current, output="lost update")
    assert first.applied and first.record.version == 2
    assert not stale.applied
    assert stale.record == first.record
    assert board.get_orchestration(current.id).output is None


def test_finished_orchestration_never_changes(backends: Backends) -> None:
    board = backends.blackboard
    done = board.update_orchestration(started(board), status=OrchestrationStatus.COMPLETED, output="42").record
    with pytest.raises(InvalidTransitionError):
        board.update_orchestration(done, status=OrchestrationStatus.RUNNING)
    with pytest.raises(InvalidTransitionError):
        board.update_orchestration(done, output="changed")
    assert board.get_orchestration(done.id).output == "42"


def test_list_filters_by_status_newest_first(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    ids = []
    for i in range(3):
        clock.advance(1)
        ids.append(board.create_orchestration(Orchestration(event=event(f"e{i}"), created_at=clock.now())).record.id)
    board.update_orchestration(board.get_orchestration(ids[1]), status=OrchestrationStatus.FAILED, error="x")
    assert [o.id for o in board.list_orchestrations()] == ids[::-1]
    assert [o.id for o in board.list_orchestrations(OrchestrationStatus.FAILED)] == [ids[1]]
    assert [o.id for o in board.list_orchestrations(limit=2)] == ids[:0:-1]


def test_update_refuses_identity_fields(backends: Backends) -> None:
    current = started(backends.blackboard)
    with pytest.raises(RecordValidationError, match="version"):
        backends.blackboard.update_orchestration(current, version=99)
    with pytest.raises(RecordValidationError, match="wave"):
        backends.blackboard.update_orchestration(current, wave=-1)


# ---------------------------------------------------------------- waves


def test_add_wave_stores_tasks_and_orchestration_together(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 3)
    assert orchestration.wave == 1
    assert orchestration.usage.waves == 1 and orchestration.usage.tasks == 3
    stored = board.list_tasks(orchestration.id)
    assert [t.task_id for t in stored] == [t.task_id for t in tasks]
    assert all(t.state is TaskState.PENDING and t.attempt == 1 for t in stored)
    assert board.get_orchestration(orchestration.id) == orchestration


def test_add_wave_with_stale_version_writes_nothing(backends: Backends) -> None:
    board = backends.blackboard
    current = started(board)
    board.update_orchestration(current, output="moved on")
    result = board.add_wave(current, tasks_for(current, 2))
    assert not result.applied
    assert board.list_tasks(current.id) == []
    assert board.get_orchestration(current.id).wave == 0


def test_add_wave_reusing_a_task_id_writes_nothing(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, first = with_wave(board, 1)
    board.complete(orchestration.id, first[0].task_id, 1, ok())
    reused = [t.model_copy(update={"wave": 2}) for t in first]
    result = board.add_wave(orchestration, reused)
    assert not result.applied
    assert board.get_orchestration(orchestration.id).wave == 1
    assert len(board.list_tasks(orchestration.id)) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda ts: [], ""),
        (lambda ts: [ts[0], ts[0]], "task_id"),
        (lambda ts: [ts[0].model_copy(update={"wave": 5})], "wave"),
        (lambda ts: [ts[0].model_copy(update={"orchestration_id": "other"})], "wave"),
        (lambda ts: [ts[0].model_copy(update={"attempt": 2})], "state"),
    ],
    ids=["empty", "duplicate-id", "wrong-wave", "other-orchestration", "not-fresh"],
)
def test_add_wave_validates_before_writing(backends: Backends, change, field: str) -> None:  # type: ignore[no-untyped-def]
    board = backends.blackboard
    current = started(board)
    with pytest.raises(RecordValidationError) as raised:
        board.add_wave(current, change(tasks_for(current, 2)))
    assert raised.value.field == field
    assert board.list_tasks(current.id) == []
    assert board.get_orchestration(current.id) == current


def test_two_calls_to_the_same_agent_are_two_tasks(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 2)
    assert {t.agent.name for t in tasks} == {"cook"}
    assert len(board.list_tasks(orchestration.id, wave=1)) == 2


# ---------------------------------------------------------------- task transitions


def test_happy_path_closes_the_wave_once(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 2)
    assert all(t.applied for t in board.mark_dispatched(tasks))
    closes = []
    for task in tasks:
        assert board.claim(orchestration.id, task.task_id, 1).applied
        done = board.complete(orchestration.id, task.task_id, 1, ok(task.task_id))
        assert done.applied and done.task.state is TaskState.SUCCEEDED
        closes.append(done.closes_wave)
    assert closes == [False, True]
    stored = board.get_task(orchestration.id, tasks[0].task_id)
    assert stored.result is not None and stored.result.output == tasks[0].task_id and stored.result.attempt == 1


def test_duplicate_completion_is_a_no_op(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    first = board.complete(orchestration.id, tasks[0].task_id, 1, ok("first"))
    again = board.complete(orchestration.id, tasks[0].task_id, 1, ok("second"))
    assert first.applied and first.closes_wave
    assert not again.applied and not again.closes_wave
    assert again.task.result is not None and again.task.result.output == "first"


def test_claim_is_exclusive(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    assert board.claim(orchestration.id, tasks[0].task_id, 1).applied
    assert not board.claim(orchestration.id, tasks[0].task_id, 1).applied
    assert not board.mark_dispatched(tasks)[0].applied  # a late dispatch mark after the claim changes nothing


def test_unknown_task_raises(backends: Backends) -> None:
    orchestration, _ = with_wave(backends.blackboard, 1)
    with pytest.raises(TaskNotFoundError):
        backends.blackboard.complete(orchestration.id, "nope", 1, ok())


def test_retry_then_success(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    board.claim(orchestration.id, task_id, 1)
    first = board.complete(orchestration.id, task_id, 1, failed(), retry_at=clock.now() + timedelta(seconds=2))
    assert first.applied and not first.closes_wave
    assert first.task.state is TaskState.FAILED and not first.task.done
    assert board.find_tasks([TaskState.FAILED], retry_before=clock.now()) == []
    clock.advance(2)
    assert [t.task_id for t in board.find_tasks([TaskState.FAILED], retry_before=clock.now())] == [task_id]
    retried = board.retry(orchestration.id, task_id, 1)
    assert retried.applied
    assert retried.task.state is TaskState.PENDING and retried.task.attempt == 2 and retried.task.result is None
    assert [r.attempt for r in retried.task.attempts] == [1]
    assert not board.retry(orchestration.id, task_id, 1).applied  # duplicate retry
    late = board.complete(orchestration.id, task_id, 1, ok("late attempt 1"))
    assert not late.applied  # out of order: attempt 1 finished again after attempt 2 started
    assert board.claim(orchestration.id, task_id, 2).applied
    final = board.complete(orchestration.id, task_id, 2, ok())
    assert final.applied and final.closes_wave


def test_retries_stop_at_max_attempts(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1, max_attempts=2)
    task_id = tasks[0].task_id
    later = clock.now() + timedelta(seconds=1)
    board.complete(orchestration.id, task_id, 1, timed_out(), retry_at=later)
    board.retry(orchestration.id, task_id, 1)
    last = board.complete(orchestration.id, task_id, 2, failed(), retry_at=later)
    assert last.task.done and last.task.retry_at is None and last.closes_wave
    assert not board.retry(orchestration.id, task_id, 2).applied


def test_not_retryable_error_is_final(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    result = board.complete(
        orchestration.id, tasks[0].task_id, 1, failed(retryable=False), retry_at=clock.now() + timedelta(seconds=1)
    )
    assert result.task.done and result.closes_wave


def test_retry_at_on_success_is_refused(backends: Backends, clock: ManualClock) -> None:
    orchestration, tasks = with_wave(backends.blackboard, 1)
    with pytest.raises(RecordValidationError):
        backends.blackboard.complete(orchestration.id, tasks[0].task_id, 1, ok(), retry_at=clock.now())


def test_cancel_counts_toward_the_wave(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 3)
    board.complete(orchestration.id, tasks[0].task_id, 1, ok())
    board.complete(orchestration.id, tasks[1].task_id, 1, failed(), retry_at=clock.now())  # waiting for a retry
    first = board.cancel(orchestration.id, tasks[1].task_id, "budget")
    assert first.applied and not first.closes_wave
    assert [r.status for r in first.task.attempts] == [TaskState.FAILED]
    last = board.cancel(orchestration.id, tasks[2].task_id)
    assert last.applied and last.closes_wave
    assert not board.cancel(orchestration.id, tasks[0].task_id).applied  # already done
    assert board.get_task(orchestration.id, tasks[0].task_id).state is TaskState.SUCCEEDED


def test_batch_dispatch_only_moves_pending_at_the_attempt(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 3)
    board.claim(orchestration.id, tasks[1].task_id, 1)
    stale = tasks[2].model_copy(update={"attempt": 2})
    results = board.mark_dispatched([tasks[0], tasks[1], stale])
    assert [r.applied for r in results] == [True, False, False]
    assert [t.state for t in board.list_tasks(orchestration.id)] == [
        TaskState.DISPATCHED,
        TaskState.RUNNING,
        TaskState.PENDING,
    ]


def test_find_tasks_for_the_sweeper(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration = started(board)
    tasks = [
        t.model_copy(update={"deadline": clock.now() + timedelta(seconds=10)}) for t in tasks_for(orchestration, 3)
    ]
    board.add_wave(orchestration, tasks)
    board.mark_dispatched(tasks[1:2])
    clock.advance(5)
    board.claim(orchestration.id, tasks[2].task_id, 1)
    stranded = board.find_tasks([TaskState.PENDING, TaskState.DISPATCHED], updated_before=clock.now())
    assert sorted(t.task_id for t in stranded) == [tasks[0].task_id, tasks[1].task_id]
    assert board.find_tasks([TaskState.RUNNING], deadline_before=clock.now()) == []
    clock.advance(6)
    overdue = board.find_tasks([TaskState.RUNNING], deadline_before=clock.now())
    assert [t.task_id for t in overdue] == [tasks[2].task_id]
    assert len(board.find_tasks(list(TaskState), limit=2)) == 2


# ---------------------------------------------------------------- notes


def test_notes_are_compare_and_set(backends: Backends) -> None:
    board = backends.blackboard
    orchestration = started(board)
    first = board.put_note(orchestration.id, "inventory", {"buns": 3}, author="cook")
    assert first.applied and first.record.version == 1
    taken = board.put_note(orchestration.id, "inventory", {"buns": 0}, author="fry")
    assert not taken.applied and taken.record.value == {"buns": 3}
    second = board.put_note(orchestration.id, "inventory", {"buns": 2}, author="fry", expected_version=1)
    assert second.applied and second.record.version == 2
    stale = board.put_note(orchestration.id, "inventory", {"buns": 9}, expected_version=1)
    assert not stale.applied and stale.record.value == {"buns": 2}
    missing = board.put_note(orchestration.id, "other", 1, expected_version=4)
    assert not missing.applied and board.get_note(orchestration.id, "other") is None
    board.put_note(orchestration.id, "a-first", True)
    assert [n.key for n in board.notes(orchestration.id)] == ["a-first", "inventory"]
    assert board.notes("another orchestration") == []


# ---------------------------------------------------------------- reading a wave


def test_read_wave_gives_the_orchestration_its_current_wave_and_notes(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, first = with_wave(board, 2)
    for task in first:
        board.complete(orchestration.id, task.task_id, 1, ok(task.task_id))
    orchestration = board.get_orchestration(orchestration.id)
    second = tasks_for(orchestration, 3)
    orchestration = board.add_wave(orchestration, second).record
    board.complete(orchestration.id, second[1].task_id, 1, ok("b"))
    board.put_note(orchestration.id, "zeta", [1, 2], author="cook")
    board.put_note(orchestration.id, "alpha", "é", author="fry")
    view = board.read_wave(orchestration.id, first[0].task_id)
    assert view.orchestration == board.get_orchestration(orchestration.id)
    assert view.tasks == board.list_tasks(orchestration.id, wave=2)
    assert [t.task_id for t in view.tasks] == [t.task_id for t in second]
    assert view.notes == board.notes(orchestration.id)
    assert [n.key for n in view.notes] == ["alpha", "zeta"]
    assert view.task == board.get_task(orchestration.id, first[0].task_id)  # of an earlier wave
    assert board.read_wave(orchestration.id, second[1].task_id).task == view.tasks[1]
    assert board.read_wave(orchestration.id, "no-such-task").task is None
    assert board.read_wave(orchestration.id).task is None


def test_read_wave_before_any_wave_and_of_no_orchestration(backends: Backends) -> None:
    board = backends.blackboard
    orchestration = started(board)
    view = board.read_wave(orchestration.id, "w1-t0")
    assert view.orchestration == orchestration
    assert view.tasks == [] and view.notes == [] and view.task is None
    with pytest.raises(OrchestrationNotFoundError):
        board.read_wave("no-such-orchestration")


# ---------------------------------------------------------------- batches


def test_batches_apply_each_change_and_close_once(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 3)
    claims = board.claim_many([tasks[0], tasks[1], tasks[0]])
    assert [c.applied for c in claims] == [True, True, False]
    results = board.complete_many(
        [
            Completion(orchestration.id, tasks[0].task_id, 1, ok()),
            Completion(orchestration.id, tasks[0].task_id, 1, ok("duplicate")),
            Completion(orchestration.id, tasks[1].task_id, 1, ok()),
            Completion(orchestration.id, tasks[2].task_id, 1, failed(retryable=False)),
        ]
    )
    assert [(r.applied, r.closes_wave) for r in results] == [(True, False), (False, False), (True, False), (True, True)]


def test_failed_batch_leaves_no_trace(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 2)
    with pytest.raises(TaskNotFoundError):
        board.complete_many(
            [
                Completion(orchestration.id, tasks[0].task_id, 1, ok()),
                Completion(orchestration.id, "missing", 1, ok()),
            ]
        )
    assert [t.state for t in board.list_tasks(orchestration.id)] == [TaskState.PENDING, TaskState.PENDING]
    results = board.complete_many([Completion(orchestration.id, t.task_id, 1, ok()) for t in tasks])
    assert [r.closes_wave for r in results] == [False, True]  # the failed batch did not count toward the wave


def test_add_wave_counts_on_top_of_the_callers_usage(backends: Backends) -> None:
    board = backends.blackboard
    current = started(board)
    usage = current.usage.model_copy(update={"tokens": 500, "fabrications": 1})
    stored = board.add_wave(current, tasks_for(current, 2), usage=usage).record
    assert (stored.usage.waves, stored.usage.tasks, stored.usage.tokens, stored.usage.fabrications) == (1, 2, 500, 1)


def test_the_completion_token_survives_every_transition(backends: Backends, clock: ManualClock) -> None:
    from blackboard.messages import new_completion_token

    board = backends.blackboard
    orchestration = started(board)
    token = new_completion_token()
    (task,) = [t.model_copy(update={"token": token}) for t in tasks_for(orchestration, 1)]
    assert board.add_wave(orchestration, [task]).applied
    assert board.get_task(orchestration.id, task.task_id).accepts(token)
    board.mark_dispatched([board.get_task(orchestration.id, task.task_id)])
    assert board.claim(orchestration.id, task.task_id, 1).task.accepts(token)
    board.complete(orchestration.id, task.task_id, 1, failed(), retry_at=clock.now())
    retried = board.retry(orchestration.id, task.task_id, 1)
    assert retried.applied and retried.task.accepts(token)
    assert board.list_tasks(orchestration.id)[0].accepts(token)
    stored = board.get_task(orchestration.id, task.task_id)
    assert not stored.accepts(None) and not stored.accepts(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert token not in repr(stored)  # never shown
