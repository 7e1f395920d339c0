"""Blackboard throughput: conditional task transitions per second on the SQLite adapter.

Run: ``.venv/bin/python bench/blackboard.py`` (or ``make bench``). Prints one line per configuration.

A *transition* is one conditional task change (claim ``dispatched → running`` or complete ``running → succeeded``).
Each is its own transaction, or, in the ``batch=10`` rows, ten share one (``claim_many``/``complete_many``, a group
commit). Writers are threads of one process sharing the file (one connection each). The last column is the batched
dispatch of whole waves of 50 (one transaction per wave). The in-memory adapter is shown for comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blackboard import AgentRef, Blackboard, Completion, Event, Orchestration, Task, TaskResult, TaskState
from blackboard.adapters import MemoryBlackboard, SqliteBlackboard, SqliteDatabase

WAVE = 50


def _prepare(board: Blackboard, total: int) -> list[Task]:
    """Orchestrations with waves of 50 pending tasks, all dispatched (the dispatch is timed separately)."""
    tasks: list[Task] = []
    for start in range(0, total, WAVE):
        event = Event.parse({"source": "bench", "detail-type": "run", "detail": {}})
        orchestration = board.create_orchestration(Orchestration(event=event)).record
        wave = [
            Task(orchestration_id=orchestration.id, task_id=f"t{i}", wave=1, agent=AgentRef(name="noop", version=1))
            for i in range(start, min(start + WAVE, total))
        ]
        board.add_wave(orchestration, wave)
        tasks.extend(wave)
    return tasks


RESULT = TaskResult(status=TaskState.SUCCEEDED, output={"ok": True}, duration_ms=0.1)


def _one_by_one(board: Blackboard, tasks: list[Task]) -> int:
    closes = 0
    for task in tasks:
        board.claim(task.orchestration_id, task.task_id, 1)
        closes += board.complete(task.orchestration_id, task.task_id, 1, RESULT).closes_wave
    return closes


def _batched(board: Blackboard, tasks: list[Task], batch: int = 10) -> int:
    """Claims and completions grouped ten at a time (an SQS receive batch), one transaction per group."""
    closes = 0
    for start in range(0, len(tasks), batch):
        group = tasks[start : start + batch]
        board.claim_many(group)
        completions = [Completion(t.orchestration_id, t.task_id, 1, RESULT) for t in group]
        closes += sum(t.closes_wave for t in board.complete_many(completions))
    return closes


def run(board: Blackboard, total: int, threads: int, batched: bool = False) -> tuple[float, float]:
    tasks = _prepare(board, total)
    started = time.perf_counter()
    for start in range(0, total, WAVE):
        board.mark_dispatched(tasks[start : start + WAVE])
    dispatch_rate = total / (time.perf_counter() - started)
    shares = [tasks[i::threads] for i in range(threads)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        work = _batched if batched else _one_by_one
        closes = sum(pool.map(lambda share: work(board, share), shares))
    elapsed = time.perf_counter() - started
    assert closes == (total + WAVE - 1) // WAVE, "every wave closes exactly once"
    return 2 * total / elapsed, dispatch_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4000, help="tasks per run (default 4000)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8], help="writer threads (default 1 8)")
    args = parser.parse_args()
    print(f"{'adapter':<28} {'threads':>7} {'transitions/s':>14} {'µs/transition':>14} {'dispatch tasks/s':>17}")

    def show(name: str, threads: int, figures: tuple[float, float]) -> None:
        rate, dispatch = figures
        print(f"{name:<28} {threads:>7} {rate:>14,.0f} {1e6 / rate:>14.1f} {dispatch:>17,.0f}", flush=True)

    for threads in args.threads:
        for synchronous, batched in (("NORMAL", False), ("NORMAL", True), ("FULL", False), ("FULL", True)):
            with tempfile.TemporaryDirectory() as root:
                database = SqliteDatabase(Path(root) / "bench.db", synchronous=synchronous)
                figures = run(SqliteBlackboard(database), args.tasks, threads, batched)
                database.close()
            show(f"sqlite sync={synchronous}{' batch=10' if batched else ''}", threads, figures)
        show("memory", threads, run(MemoryBlackboard(), args.tasks, threads))


if __name__ == "__main__":
    main()
