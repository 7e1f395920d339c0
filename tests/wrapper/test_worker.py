"""The worker loop: many tasks through a queue with a pool, duplicates, poison messages."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from blackboard import AgentRef, Received, TaskMessage, TaskState
from blackboard.adapters import MemoryTaskQueue
from tests.wrapper.conftest import Harness
from wrapper.executor import Executor
from wrapper.sandbox import SandboxPool
from wrapper.worker import WorkerStats, run_worker

SLOW_ECHO = "import time\ndef handler(n):\n    time.sleep(0.05)\n    return n * 2\n"


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=2) as sandbox:
        yield sandbox


def test_worker_runs_a_wave_with_a_pool(harness: Harness, pool: SandboxPool) -> None:
    agent = harness.register("double", SLOW_ECHO)
    messages = harness.wave(*[(agent, {"n": i}) for i in range(8)])
    queue = harness.backends.queue
    queue.send(messages)
    queue.send(messages[:3])  # redelivered duplicates
    executor = Executor(harness.backends, sandbox=pool)
    stats = run_worker(queue, executor, concurrency=2, max_messages=11, wait_seconds=0.2)
    executor.close()
    assert (stats.executed, stats.dropped) == (8, 3)
    tasks = harness.backends.blackboard.list_tasks(messages[0].orchestration_id)
    assert [t.result.output for t in tasks if t.result] == [i * 2 for i in range(8)]
    assert all(t.state is TaskState.SUCCEEDED for t in tasks)
    assert sum(c.closes_wave for c in harness.completions) == 1
    assert queue.stats().visible == 0 and queue.stats().in_flight == 0


def test_poison_messages_end_in_the_dead_letter_queue(harness: Harness, pool: SandboxPool) -> None:
    queue = harness.backends.queue
    fabrication = '{"schema": "arbiter.fabrication/1", "orchestration_id": "o", "task_id": "t", "capability": "x"}'
    queue.send_raw(["{this is not a task", fabrication])
    executor = Executor(harness.backends, sandbox=pool)
    stop = threading.Event()
    stats: list[WorkerStats] = []
    worker = threading.Thread(
        target=lambda: stats.append(run_worker(queue, executor, concurrency=1, stop=stop, wait_seconds=0.05))
    )
    worker.start()
    deadline = time.monotonic() + 60
    while len(queue.dead_letters()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    worker.join(timeout=30)
    executor.close()
    assert {d.body for d in queue.dead_letters()} == {"{this is not a task", fabrication}
    assert stats[0].rejected == 2 * queue.max_receives and stats[0].executed == 0
    assert harness.completions == []


def test_worker_stops_when_asked(harness: Harness, pool: SandboxPool) -> None:
    stop = threading.Event()
    executor = Executor(harness.backends, sandbox=pool)
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run_worker(harness.backends.queue, executor, stop=stop, wait_seconds=0.05).total())
    )
    thread.start()
    stop.set()
    thread.join(timeout=30)
    executor.close()
    assert result == [0]


def test_a_message_for_a_task_that_does_not_exist_is_dead_lettered_at_once(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    queue = harness.backends.queue
    queue.send([TaskMessage(orchestration_id="gone", task_id="t1", attempt=1, agent=AgentRef(name="x", version=1))])
    executor = Executor(harness.backends)
    with caplog.at_level(logging.DEBUG, logger="wrapper"):
        stats = run_worker(queue, executor, concurrency=1, max_messages=1, wait_seconds=5)
    executor.close()
    assert (stats.rejected, stats.errors) == (1, 0)
    (dead,) = queue.dead_letters()
    assert TaskMessage.parse_json(dead.body).task_id == "t1" and dead.receive_count == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # one clear line, no traceback
    assert "moved to the dead-letter queue" in warnings[0].getMessage() and "gone" in warnings[0].getMessage()


def test_the_worker_hides_a_message_it_runs_for_the_visibility_it_was_given(harness: Harness) -> None:
    database = harness.backends.database
    assert database is not None
    hidden_for: list[float] = []

    def look() -> None:
        with database.read() as conn:
            (visible_at,) = conn.execute("SELECT visible_at FROM queue_messages").fetchone()
        hidden_for.append(visible_at - time.time())

    agent = harness.register("look", "def handler():\n    pass\n", isolation="in_process")
    harness.backends.queue.send(harness.wave((agent, {})))
    executor = Executor(harness.backends, trusted={"look": look})
    stats = run_worker(harness.backends.queue, executor, max_messages=1, wait_seconds=5, visibility_seconds=300)
    executor.close()
    assert stats.executed == 1 and len(hidden_for) == 1 and 240 < hidden_for[0] <= 300


class StopDuringReceiveQueue(MemoryTaskQueue):
    """A fake queue: the stop is requested while a receive is under way (as when a runtime closes)."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop

    def receive(self, max_messages: int = 10, **kwargs: Any) -> list[Received]:
        received = super().receive(max_messages, **kwargs)
        self.stop.set()
        return received


def test_a_message_received_while_stopping_goes_back_untouched(harness: Harness) -> None:
    stop = threading.Event()
    queue = StopDuringReceiveQueue(stop)
    agent = harness.register("noop", "def handler():\n    pass\n", isolation="in_process")
    (message,) = harness.wave((agent, {}))
    queue.send([message])
    executor = Executor(harness.backends, trusted={"noop": lambda: None})
    stats = run_worker(queue, executor, concurrency=1, stop=stop, wait_seconds=5)
    executor.close()
    assert stats.total() == 0 and queue.stats().visible == 1
    assert harness.backends.blackboard.get_task(message.orchestration_id, message.task_id).state is TaskState.DISPATCHED


def test_a_worker_stuck_in_a_hung_trusted_call_is_replaced_and_never_waited_for(harness: Harness) -> None:
    release = threading.Event()
    hung = threading.Event()

    def hang() -> str:
        hung.set()
        release.wait(60)
        return "late"

    executor = Executor(harness.backends, trusted={"hang": hang, "cook": lambda n: n + 1})
    hang_agent = harness.register("hang", "def handler(**kw):\n    return None\n", isolation="in_process", timeout=0.3)
    cook = harness.register("cook", "def handler(n):\n    return n\n", isolation="in_process")
    stuck, *cooked = harness.wave((hang_agent, {}), *[(cook, {"n": i}) for i in range(3)])
    queue = harness.backends.queue
    queue.send([stuck])
    stop = threading.Event()
    stats: list[WorkerStats] = []
    worker = threading.Thread(
        target=lambda: stats.append(run_worker(queue, executor, concurrency=1, stop=stop, wait_seconds=0.05)),
        daemon=True,
    )
    worker.start()
    try:
        assert hung.wait(30)
        queue.send(cooked)  # the only worker is inside the hung call: its stand-in serves these
        board = harness.backends.blackboard

        def states() -> list[TaskState]:
            return [t.state for t in board.list_tasks(stuck.orchestration_id)]

        deadline = time.monotonic() + 30
        while states() != [TaskState.TIMED_OUT, *[TaskState.SUCCEEDED] * 3] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert states() == [TaskState.TIMED_OUT, *[TaskState.SUCCEEDED] * 3]
        stop.set()
        worker.join(10)
        assert not worker.is_alive()  # it returned while the call still hangs: the stuck thread is not waited for
        assert any(t.name == "arbiter-trusted-hang" for t in threading.enumerate())  # the worker, still in the call
    finally:
        release.set()
        executor.close()
    assert sorted(c.task_id for c in harness.completions) == sorted(m.task_id for m in [stuck, *cooked])
    assert stats[0].executed == 3
