"""The worker loop: many tasks through a queue with a pool, duplicates, poison messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from blackboard import TaskState
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
