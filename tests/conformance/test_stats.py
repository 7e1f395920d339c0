"""Conformance: agent stats, with the duration histogram, lose no count under concurrent completions.

Threads and processes record completions of one agent version at once; the totals, the per-status counts and the
per-bucket counts must come out exact, and the histogram must sum to the invocations.
"""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from blackboard import Backends, TaskState
from blackboard.ports.registry import BUCKET_COUNT, StatsDelta
from blackboard.records import AgentStats, duration_bucket
from tests.conformance.backends import open_backends
from tests.conformance.builders import manifest

THREADS = 8
PROCESSES = 4
PER_WORKER = 30
_STATUSES = (TaskState.SUCCEEDED, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.TIMED_OUT)


def _completion(worker: int, index: int) -> tuple[TaskState, float, int]:
    """The ``index``-th completion of ``worker``: statuses and durations spread over many buckets."""
    return _STATUSES[(worker + index) % 4], float((index * 37 + worker * 11) % 5000) + 0.5, index % 7


def _record(backends: Backends, worker: int) -> None:
    for index in range(PER_WORKER):
        status, duration, tokens = _completion(worker, index)
        backends.registry.record_completion("burger_cook", 1, status, duration, tokens)


def _expected(workers: int) -> AgentStats:
    delta = StatsDelta()
    for worker in range(workers):
        for index in range(PER_WORKER):
            delta = delta + StatsDelta.of(*_completion(worker, index))
    return delta.applied_to(AgentStats())


def _assert_exact(stats: AgentStats, workers: int) -> None:
    expected = _expected(workers)
    assert stats.invocations == workers * PER_WORKER
    assert (stats.succeeded, stats.failed, stats.timed_out, stats.tokens) == (
        expected.succeeded,
        expected.failed,
        expected.timed_out,
        expected.tokens,
    )
    assert abs(stats.total_ms - expected.total_ms) < 1e-6
    assert stats.duration_buckets == expected.duration_buckets
    assert sum(stats.duration_buckets) == stats.invocations
    assert len([c for c in stats.duration_buckets if c]) > 5  # the spread really covers several buckets


def test_a_delta_adds_to_every_counter_and_bucket(backends: Backends) -> None:
    registry = backends.registry
    registry.put(manifest())
    registry.record_completion("burger_cook", 1, TaskState.SUCCEEDED, 3.0, 4)
    batch = StatsDelta.of(TaskState.FAILED, 3.0, 1) + StatsDelta.of(TaskState.TIMED_OUT, 70_000.0, 0)
    registry.add_stats("burger_cook", 1, batch)
    registry.add_stats("burger_cook", 1, StatsDelta(tokens=5))  # no durations: the histogram is left alone
    stats = registry.get("burger_cook", 1).stats
    assert (stats.invocations, stats.succeeded, stats.failed, stats.timed_out, stats.tokens) == (3, 1, 1, 1, 10)
    assert len(stats.duration_buckets) == BUCKET_COUNT
    assert stats.duration_buckets[duration_bucket(3.0)] == 2
    assert stats.duration_buckets[duration_bucket(70_000.0)] == 1
    assert sum(stats.duration_buckets) == 3
    assert stats.p95_ms == 131_072.0  # the upper bound of the bucket of the slowest call
    assert round(stats.failure_rate, 3) == 0.667
    assert stats.example_checks == 0


def test_add_stats_returns_the_stats_its_update_produced(backends: Backends) -> None:
    registry = backends.registry
    registry.put(manifest())
    registry.record_completion("burger_cook", 1, TaskState.SUCCEEDED, 3.0, 4)
    after = registry.add_stats("burger_cook", 1, StatsDelta.of(TaskState.FAILED, 70_000.0, 2) + StatsDelta(tokens=1))
    assert after == registry.get("burger_cook", 1).stats
    assert (after.invocations, after.succeeded, after.failed, after.tokens) == (2, 1, 1, 7)
    assert after.duration_buckets[duration_bucket(70_000.0)] == 1 and sum(after.duration_buckets) == 2
    assert registry.add_stats("burger_cook", 1, StatsDelta(example_checks=3)).example_checks == 3


def test_example_checks_add_up_apart_from_invocations(backends: Backends) -> None:
    registry = backends.registry
    registry.put(manifest())
    registry.add_stats("burger_cook", 1, StatsDelta(example_checks=2))
    registry.add_stats("burger_cook", 1, StatsDelta(example_checks=1) + StatsDelta.of(TaskState.SUCCEEDED, 3.0, 0))
    stats = registry.get("burger_cook", 1).stats
    assert (stats.example_checks, stats.invocations, stats.succeeded) == (3, 1, 1)
    assert registry.versions("burger_cook")[0].stats.example_checks == 3


def test_threads_lose_no_stats_update(backends: Backends) -> None:
    backends.registry.put(manifest())
    threads = [threading.Thread(target=_record, args=(backends, worker)) for worker in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_exact(backends.registry.get("burger_cook", 1).stats, THREADS)


def _process_worker(name: str, root: str, worker: int) -> None:
    backends = open_backends(name, Path(root))
    try:
        _record(backends, worker)
    finally:
        backends.close()


def test_processes_lose_no_stats_update(shared_backend_name: str, tmp_path: Path) -> None:
    backends = open_backends(shared_backend_name, tmp_path)
    backends.registry.put(manifest())
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        pool.starmap(_process_worker, [(shared_backend_name, str(tmp_path), worker) for worker in range(PROCESSES)])
    _assert_exact(backends.registry.get("burger_cook", 1).stats, PROCESSES)
    backends.close()
