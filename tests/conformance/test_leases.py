"""Conformance: claims with leases (holder, expiry, renewal, start fence, reclaim), on every backend."""

from __future__ import annotations

from datetime import timedelta

from blackboard import Backends, TaskError, TaskResult, TaskState
from blackboard.leases import Holder, start_by, this_process
from tests.conformance.builders import ok, with_wave
from tests.conftest import ManualClock

ME = "host-a/100/5000"
OTHER = "host-b/200/6000"


def lease_expired(attempt: int) -> TaskResult:
    error = TaskError(type="LeaseExpired", message="the holder stopped renewing its lease")
    return TaskResult(status=TaskState.TIMED_OUT, error=error, attempt=attempt)


def test_claim_records_the_holder_and_the_lease(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    claimed = board.claim(orchestration.id, tasks[0].task_id, 1, holder=ME, lease_seconds=10)
    assert claimed.applied
    stored = board.get_task(orchestration.id, tasks[0].task_id)
    assert stored == claimed.task
    assert stored.state is TaskState.RUNNING
    assert stored.holder == ME
    assert stored.lease_expires_at == clock.now() + timedelta(seconds=10)
    again = board.claim(orchestration.id, tasks[0].task_id, 1, holder=OTHER, lease_seconds=10)
    assert not again.applied
    assert board.get_task(orchestration.id, tasks[0].task_id).holder == ME


def test_a_claim_without_a_lease_has_no_holder(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    claimed = board.claim(orchestration.id, tasks[0].task_id, 1)
    assert claimed.applied
    stored = board.get_task(orchestration.id, tasks[0].task_id)
    assert (stored.holder, stored.lease_expires_at) == (None, None)


def test_only_the_holder_renews_and_only_while_running(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    board.claim(orchestration.id, task_id, 1, holder=ME, lease_seconds=10)
    clock.advance(5)
    assert not board.renew_lease(orchestration.id, task_id, 1, OTHER, 10).applied
    assert not board.renew_lease(orchestration.id, task_id, 2, ME, 10).applied
    renewed = board.renew_lease(orchestration.id, task_id, 1, ME, 10)
    assert renewed.applied
    assert board.get_task(orchestration.id, task_id).lease_expires_at == clock.now() + timedelta(seconds=10)
    board.complete(orchestration.id, task_id, 1, ok())
    done = board.get_task(orchestration.id, task_id)
    assert (done.holder, done.lease_expires_at) == (None, None)
    assert not board.renew_lease(orchestration.id, task_id, 1, ME, 10).applied


def test_start_fence_needs_the_attempt_the_holder_the_lease_and_the_deadline(
    backends: Backends, clock: ManualClock
) -> None:
    board = backends.blackboard
    orchestration, _ = with_wave(board, 1)
    task = board.list_tasks(orchestration.id)[0]
    board.claim(orchestration.id, task.task_id, 1, holder=ME, lease_seconds=10)
    running = board.check_start(orchestration.id, task.task_id, 1, ME)
    assert running is not None and start_by(running) == clock.now() + timedelta(seconds=10)
    assert board.check_start(orchestration.id, task.task_id, 1, OTHER) is None
    assert board.check_start(orchestration.id, task.task_id, 2, ME) is None
    clock.advance(10)
    assert board.check_start(orchestration.id, task.task_id, 1, ME) is None  # the lease ran out


def test_start_fence_refuses_an_attempt_past_its_deadline(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    board.claim(orchestration.id, task_id, 1, holder=ME, lease_seconds=60)
    # The deadline is set by the coordinator when it stores the wave; here the task has none, so set one by a retry.
    board.complete(orchestration.id, task_id, 1, lease_expired(1), retry_at=clock.now())
    retried = board.retry(orchestration.id, task_id, 1, deadline=clock.now() + timedelta(seconds=2))
    assert retried.applied
    board.claim(orchestration.id, task_id, 2, holder=ME, lease_seconds=60)
    fenced = board.check_start(orchestration.id, task_id, 2, ME)
    assert fenced is not None and start_by(fenced) == clock.now() + timedelta(seconds=2)
    clock.advance(2)
    assert board.check_start(orchestration.id, task_id, 2, ME) is None


def test_reclaim_takes_back_an_expired_attempt_and_fences_the_old_holder(
    backends: Backends, clock: ManualClock
) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    board.claim(orchestration.id, task_id, 1, holder=ME, lease_seconds=10)
    clock.advance(11)
    seen = board.get_task(orchestration.id, task_id)
    reclaimed = board.reclaim(seen, lease_expired(1), retry_at=clock.now())
    assert reclaimed.applied
    assert reclaimed.task.state is TaskState.TIMED_OUT and reclaimed.task.retry_at is not None
    assert not board.reclaim(seen, lease_expired(1), retry_at=clock.now()).applied  # once
    # The old holder comes back late: its renewal, its start and its completion count for nothing.
    assert not board.renew_lease(orchestration.id, task_id, 1, ME, 10).applied
    assert board.check_start(orchestration.id, task_id, 1, ME) is None
    assert not board.complete(orchestration.id, task_id, 1, ok("late")).applied
    assert board.retry(orchestration.id, task_id, 1).applied
    assert board.claim(orchestration.id, task_id, 2, holder=OTHER, lease_seconds=10).applied
    assert not board.complete(orchestration.id, task_id, 1, ok("late")).applied
    assert board.complete(orchestration.id, task_id, 2, ok("second")).closes_wave


def test_reclaim_does_not_apply_after_a_renewal(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    task_id = tasks[0].task_id
    board.claim(orchestration.id, task_id, 1, holder=ME, lease_seconds=10)
    seen = board.get_task(orchestration.id, task_id)
    clock.advance(3)
    board.renew_lease(orchestration.id, task_id, 1, ME, 10)
    assert not board.reclaim(seen, lease_expired(1)).applied
    assert board.get_task(orchestration.id, task_id).state is TaskState.RUNNING


def test_reclaim_needs_a_holder(backends: Backends) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 1)
    board.claim(orchestration.id, tasks[0].task_id, 1)
    seen = board.get_task(orchestration.id, tasks[0].task_id)
    assert not board.reclaim(seen, lease_expired(1)).applied


def test_the_last_reclaim_of_a_wave_closes_it(backends: Backends, clock: ManualClock) -> None:
    board = backends.blackboard
    orchestration, tasks = with_wave(board, 2, max_attempts=1)
    for task in tasks:
        board.claim(orchestration.id, task.task_id, 1, holder=ME, lease_seconds=1)
    clock.advance(2)
    first, second = (board.get_task(orchestration.id, t.task_id) for t in tasks)
    assert not board.reclaim(first, lease_expired(1), retry_at=clock.now()).closes_wave
    assert board.reclaim(second, lease_expired(1), retry_at=clock.now()).closes_wave


def test_holder_of_this_process_is_alive_and_round_trips() -> None:
    me = this_process()
    assert Holder.parse(str(me)) == me
    assert me.alive() in (True, None)
    gone = Holder(host=me.host, pid=me.pid, started=f"{me.started}0")  # the same pid, another start: a reused pid
    assert gone.alive() in (False, None)
    assert Holder(host=f"{me.host}-elsewhere", pid=me.pid, started=me.started).alive() is None
    assert Holder.parse("no holder") is None
