"""Conformance: many threads, and several processes, changing the same records at once.

Every task of a wave is completed by every worker (so each completion is raced by duplicates); exactly one call in
the whole run may close the wave, and every task must be applied exactly once. Counters and notes must lose no update.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from blackboard import Backends, TaskState
from tests.conformance.backends import open_backends
from tests.conformance.builders import manifest, ok, with_wave

THREADS = 8
PROCESSES = 4
TASKS = 48


def _complete_all(backends: Backends, orchestration_id: str, task_ids: list[str], seed: int) -> tuple[int, int]:
    order = list(task_ids)
    random.Random(seed).shuffle(order)
    applied = closes = 0
    for task_id in order:
        backends.blackboard.claim(orchestration_id, task_id, 1)
        outcome = backends.blackboard.complete(orchestration_id, task_id, 1, ok(seed))
        applied += outcome.applied
        closes += outcome.closes_wave
    return applied, closes


def _bump_note(backends: Backends, orchestration_id: str, times: int) -> None:
    for _ in range(times):
        while True:
            note = backends.blackboard.get_note(orchestration_id, "counter")
            version = 0 if note is None else note.version
            value = 0 if note is None else note.value
            if backends.blackboard.put_note(orchestration_id, "counter", value + 1, expected_version=version).applied:
                break


def _count_stats(backends: Backends, times: int) -> None:
    for _ in range(times):
        backends.registry.record_completion("burger_cook", 1, TaskState.SUCCEEDED, 2.0, 3)


def test_threads_race_to_close_a_wave(backends: Backends) -> None:
    orchestration, tasks = with_wave(backends.blackboard, TASKS)
    ids = [t.task_id for t in tasks]
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda seed: _complete_all(backends, orchestration.id, ids, seed), range(THREADS)))
    assert sum(applied for applied, _ in outcomes) == TASKS
    assert sum(closes for _, closes in outcomes) == 1
    assert all(t.state is TaskState.SUCCEEDED for t in backends.blackboard.list_tasks(orchestration.id))


def test_threads_lose_no_note_or_stats_update(backends: Backends) -> None:
    orchestration, _ = with_wave(backends.blackboard, 1)
    backends.registry.put(manifest())
    threads = [
        threading.Thread(target=_bump_note, args=(backends, orchestration.id, 25)) for _ in range(THREADS // 2)
    ] + [threading.Thread(target=_count_stats, args=(backends, 25)) for _ in range(THREADS // 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    note = backends.blackboard.get_note(orchestration.id, "counter")
    assert note is not None and note.value == 25 * THREADS // 2 and note.version == note.value
    stats = backends.registry.get("burger_cook", 1).stats
    assert (stats.invocations, stats.succeeded, stats.tokens) == (100, 100, 300)
    assert stats.total_ms == 200.0


def _process_worker(name: str, root: str, orchestration_id: str, task_ids: list[str], seed: int) -> tuple[int, int]:
    backends = open_backends(name, Path(root))
    try:
        result = _complete_all(backends, orchestration_id, task_ids, seed)
        _bump_note(backends, orchestration_id, 10)
        _count_stats(backends, 10)
        return result
    finally:
        backends.close()


def test_processes_race_to_close_a_wave(shared_backend_name: str, tmp_path: Path) -> None:
    backends = open_backends(shared_backend_name, tmp_path)
    orchestration, tasks = with_wave(backends.blackboard, TASKS)
    backends.registry.put(manifest())
    ids = [t.task_id for t in tasks]
    context = multiprocessing.get_context("spawn")
    with context.Pool(PROCESSES) as pool:
        outcomes = pool.starmap(
            _process_worker,
            [(shared_backend_name, str(tmp_path), orchestration.id, ids, seed) for seed in range(PROCESSES)],
        )
    assert sum(applied for applied, _ in outcomes) == TASKS
    assert sum(closes for _, closes in outcomes) == 1
    note = backends.blackboard.get_note(orchestration.id, "counter")
    assert note is not None and note.value == 10 * PROCESSES
    assert backends.registry.get("burger_cook", 1).stats.invocations == 10 * PROCESSES
    backends.close()
