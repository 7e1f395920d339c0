"""The start fence: an attempt never starts after its deadline, nor after it was taken from this process.

Sandboxed handlers report their start to a marker server on 127.0.0.1 (``tests.markers``), so a start that should
not have happened is seen even when its result is dropped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from blackboard import AgentManifest, Task, TaskMessage, TaskState, Transition
from blackboard._base import utcnow
from blackboard.adapters import SqliteBlackboard
from tests.markers import MARKING_HANDLER, Markers, marker_server
from tests.wrapper.conftest import Harness
from wrapper.executor import NOT_STARTED, Executor
from wrapper.sandbox import SandboxLimits, SandboxPool


@pytest.fixture(scope="module")
def one_zygote() -> Iterator[SandboxPool]:
    with SandboxPool(size=1, preload=()) as sandbox:
        yield sandbox


@pytest.fixture
def markers() -> Iterator[Markers]:
    with marker_server() as server:
        yield server


def _wave(
    harness: Harness, agent: AgentManifest, inputs: list[dict[str, Any]], deadlines: list[datetime]
) -> list[TaskMessage]:
    return harness.wave(*[(agent, data) for data in inputs], deadlines=deadlines)


def test_a_sandboxed_attempt_that_waited_past_its_deadline_never_starts(
    harness: Harness, one_zygote: SandboxPool, markers: Markers
) -> None:
    agent = harness.register("mark", MARKING_HANDLER, timeout=20.0)
    executor = Executor(harness.backends, sandbox=one_zygote, limits=SandboxLimits(network=True))
    now = utcnow()
    busy, late = _wave(
        harness,
        agent,
        [{"port": markers.port, "key": "busy", "hold": 2.0}, {"port": markers.port, "key": "late"}],
        [now + timedelta(seconds=30), now + timedelta(seconds=1)],
    )
    try:
        first = threading.Thread(target=executor.execute, args=(busy,))
        first.start()
        assert markers.wait_for(lambda marks: any(m.key == "busy" for m in marks))
        # The only zygote is busy for 2 s: the late task is claimed now and waits for it past its 1 s deadline.
        completion = executor.execute(late)
        first.join()
    finally:
        executor.close()
    assert completion is not None and completion.status is TaskState.TIMED_OUT
    assert completion.error is not None and completion.error.type == NOT_STARTED and completion.error.retryable
    assert markers.of("late") == []
    assert [m.key for m in markers.marks] == ["busy"]


def test_a_sandboxed_child_killed_at_the_absolute_deadline(
    harness: Harness, one_zygote: SandboxPool, markers: Markers
) -> None:
    agent = harness.register("mark", MARKING_HANDLER, timeout=20.0)
    executor = Executor(harness.backends, sandbox=one_zygote, limits=SandboxLimits(network=True))
    (message,) = _wave(
        harness, agent, [{"port": markers.port, "key": "slow", "hold": 10.0}], [utcnow() + timedelta(seconds=1.5)]
    )
    started = time.monotonic()
    try:
        completion = executor.execute(message)
    finally:
        executor.close()
    assert completion is not None and completion.status is TaskState.TIMED_OUT
    assert time.monotonic() - started < 8.0  # the deadline, not the agent's 20 s timeout, ended it
    assert len(markers.of("slow")) == 1


#: The executors of the taken-back tests hold this lease: a start later than a third of it after the claim reads.
SHORT_LEASE = 0.3


class CountingStarts(SqliteBlackboard):
    """A store that counts the start fence's reads and can take every task back right after its claim (as the
    watchdog does when it reclaims an attempt), then hold the claim's caller for ``pause`` seconds: a start that
    waits (for a thread, a zygote) past the claim's fresh share of the lease."""

    def __init__(self, *args: Any, cancel_after_claim: bool = False, pause: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0
        self.cancel_after_claim = cancel_after_claim
        self.pause = pause

    def claim(
        self,
        orchestration_id: str,
        task_id: str,
        attempt: int,
        *,
        holder: str | None = None,
        lease_seconds: float | None = None,
    ) -> Transition:
        claimed = super().claim(orchestration_id, task_id, attempt, holder=holder, lease_seconds=lease_seconds)
        if claimed.applied and self.cancel_after_claim:
            self.cancel(orchestration_id, task_id, "taken back")
            time.sleep(self.pause)
        return claimed

    def check_start(self, orchestration_id: str, task_id: str, attempt: int, holder: str | None) -> Task | None:
        self.reads += 1
        return super().check_start(orchestration_id, task_id, attempt, holder)


def _on(harness: Harness, board: SqliteBlackboard) -> Harness:
    return Harness(type(harness.backends)(**{**vars(harness.backends), "blackboard": board}))


def _taken_back(harness: Harness) -> Harness:
    return _counting(harness, cancel_after_claim=True, pause=SHORT_LEASE / 2)[0]


def test_a_sandboxed_attempt_taken_back_before_it_starts_never_starts(
    harness: Harness, one_zygote: SandboxPool, markers: Markers
) -> None:
    fenced = _taken_back(harness)
    agent = fenced.register("mark", MARKING_HANDLER)
    (message,) = _wave(fenced, agent, [{"port": markers.port, "key": "gone"}], [utcnow() + timedelta(seconds=30)])
    executor = Executor(
        fenced.backends, sandbox=one_zygote, limits=SandboxLimits(network=True), lease_seconds=SHORT_LEASE
    )
    try:
        completion = executor.execute(message)
    finally:
        executor.close()
    assert completion is not None and completion.error is not None and completion.error.type == NOT_STARTED
    assert not completion.recorded  # the task was cancelled: this attempt's outcome counts for nothing
    assert markers.of("gone") == []


def test_a_trusted_attempt_taken_back_before_it_starts_never_starts(harness: Harness) -> None:
    fenced = _taken_back(harness)
    calls: list[str] = []
    agent = fenced.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    (message,) = _wave(fenced, agent, [{}], [utcnow() + timedelta(seconds=30)])
    executor = Executor(fenced.backends, trusted={"cook": lambda: calls.append("ran")}, lease_seconds=SHORT_LEASE)
    try:
        completion = executor.execute(message)
    finally:
        executor.close()
    assert completion is not None and completion.error is not None and completion.error.type == NOT_STARTED
    assert calls == []


def _counting(harness: Harness, **kwargs: Any) -> tuple[Harness, CountingStarts]:
    database = harness.backends.database
    assert database is not None
    board = CountingStarts(database, **kwargs)
    return _on(harness, board), board


def test_a_start_right_after_its_claim_is_fenced_by_the_claim_without_a_read(harness: Harness) -> None:
    counted, board = _counting(harness)
    calls: list[str] = []
    agent = counted.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    messages = _wave(counted, agent, [{}, {}], [utcnow() + timedelta(seconds=30)] * 2)
    executor = Executor(counted.backends, trusted={"cook": lambda: calls.append("ran")}, lease_seconds=10)
    try:
        completions = [executor.execute(message) for message in messages]
    finally:
        executor.close()
    assert calls == ["ran", "ran"] and all(c is not None and c.recorded for c in completions)
    assert board.reads == 0


def test_an_attempt_cancelled_right_after_its_claim_may_start_but_counts_for_nothing(harness: Harness) -> None:
    # A cancel can always come right after the start; one between the claim and a start that follows it at once is
    # the same race: the handler runs, and its result is not recorded.
    counted, _ = _counting(harness, cancel_after_claim=True)
    agent = counted.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    (message,) = _wave(counted, agent, [{}], [utcnow() + timedelta(seconds=30)])
    executor = Executor(counted.backends, trusted={"cook": lambda: 1}, lease_seconds=10)
    try:
        completion = executor.execute(message)
    finally:
        executor.close()
    assert completion is not None and not completion.recorded
    task = counted.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.state is TaskState.CANCELLED


def test_the_executor_claims_with_a_lease_and_drops_it_with_the_result(harness: Harness) -> None:
    seen: list[Task] = []
    agent = harness.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    (message,) = _wave(harness, agent, [{}], [utcnow() + timedelta(seconds=30)])
    board = harness.backends.blackboard
    executor = Executor(
        harness.backends,
        trusted={"cook": lambda: seen.append(board.get_task(message.orchestration_id, message.task_id))},
        lease_seconds=5,
    )
    try:
        executor.execute(message)
    finally:
        executor.close()
    (running,) = seen
    assert running.state is TaskState.RUNNING and running.holder is not None and running.lease_expires_at is not None
    done = board.get_task(message.orchestration_id, message.task_id)
    assert done.state is TaskState.SUCCEEDED and done.holder is None and done.lease_expires_at is None


class CountingRenewals(SqliteBlackboard):
    """A store that counts the lease renewals asked for after the attempt's result was written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.completed = False
        self.renewed_after = 0

    def complete(self, *args: Any, **kwargs: Any) -> Transition:
        done = super().complete(*args, **kwargs)
        self.completed = True
        return done

    def renew_lease(self, *args: Any, **kwargs: Any) -> Transition:
        self.renewed_after += self.completed
        return super().renew_lease(*args, **kwargs)


def test_no_lease_is_renewed_while_the_completion_of_an_ended_attempt_goes_out(harness: Harness) -> None:
    # In one process the completion's receiver (the next planning turn) runs inside the publish, for seconds.
    database = harness.backends.database
    assert database is not None
    board = CountingRenewals(database)
    counted = _on(harness, board)
    counted.backends.bus.subscribe({"detail-type": ["task.completed"]}, lambda event: time.sleep(0.5))
    agent = counted.register("cook", "def handler(**kw):\n    return 1\n", isolation="in_process")
    (message,) = _wave(counted, agent, [{}], [utcnow() + timedelta(seconds=30)])
    executor = Executor(counted.backends, trusted={"cook": lambda: time.sleep(0.4)}, lease_seconds=0.3)
    try:
        completion = executor.execute(message)
    finally:
        executor.close()
    assert completion is not None and completion.recorded
    assert board.completed and board.renewed_after == 0
