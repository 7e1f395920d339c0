"""Engine overhead: orchestration throughput and per-task cost with no-op trusted workers and a scripted planner.

Run: ``.venv/bin/python bench/engine.py [--tasks 1000] [--wave 50]`` (or ``make bench``). With ``--against REV``,
REV's engine and this tree's run in turn, each in a process of its own, ``--pairs`` times, and the two are compared
(see ``bench/_against.py``): the way to measure a change on a noisy machine.

The planner is a :class:`~arbiter.testing.ScriptedModel` (keeping no copy of the conversation) that asks for
``--tasks`` calls in waves of ``--wave``
parallel calls to a no-op worker registered as a trusted callable (in process), then answers. Everything else is the
real embedded runtime: SQLite blackboard, registry and queue in a temporary ``ARBITER_HOME``, the worker threads, the
coordinator and the watchdog. Per-task overhead = wall time / tasks; it includes every blackboard write (persist,
dispatch, claim, complete, close), the queue round trip, the completion event and the planner turns. The ``planner``
column is the share of it spent in the planner's turns (the model's answer read into tool calls), in µs per task.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arbiter import Deployment, EngineSettings, LocalRuntime
from arbiter.testing import ScriptedModel
from blackboard import Backends, Budget
from blackboard.adapters import (
    InProcessEventBus,
    MemoryBlackboard,
    MemoryCodeStore,
    MemoryRegistry,
    MemoryTaskQueue,
)


def noop(i: int) -> int:
    return i


def script(tasks: int, wave: int) -> list[dict[str, object]]:
    turns: list[dict[str, object]] = []
    for start in range(0, tasks, wave):
        calls = [{"name": "noop", "input": {"i": i}} for i in range(start, min(start + wave, tasks))]
        turns.append({"tool_calls": calls})
    turns.append({"text": "done"})
    return turns


def memory_backends() -> Backends:
    """Every port in memory: the engine's own cost, without a store's."""
    return Backends(MemoryBlackboard(), MemoryRegistry(), MemoryCodeStore(), MemoryTaskQueue(), InProcessEventBus())


def run_once(tasks: int, wave: int, workers: int, *, store: str = "sqlite") -> tuple[float, int]:
    """One run of ``tasks`` no-op tasks in waves of ``wave`` on ``store`` (sqlite, memory): (seconds, waves)."""
    elapsed, waves, _ = run_timed(tasks, wave, workers, store=store)
    return elapsed, waves


def run_timed(tasks: int, wave: int, workers: int, *, store: str = "sqlite") -> tuple[float, int, float]:
    """As :func:`run_once`, plus the seconds spent in the planner's turns: (seconds, waves, planner seconds)."""
    waves = -(-tasks // wave)
    budget = Budget(max_waves=waves, max_tasks=tasks, timeout_seconds=3600)
    backends = memory_backends() if store == "memory" else None
    with tempfile.TemporaryDirectory() as home:
        with LocalRuntime(
            home,
            model=ScriptedModel(script(tasks, wave), keep_messages=False),
            settings=EngineSettings(budget=budget),
            deployment=Deployment(workers=workers, backends=backends),
        ) as runtime:
            runtime.register_agent("noop", "Does nothing.", noop)
            planner = runtime.coordinator.planner
            plan, planning = planner.plan, [0.0]

            def timed_plan(*args: Any, **kwargs: Any) -> Any:
                began = time.perf_counter()
                try:
                    return plan(*args, **kwargs)
                finally:
                    planning[0] += time.perf_counter() - began

            planner.plan = timed_plan  # type: ignore[method-assign]
            started = time.perf_counter()
            result = runtime.run({"source": "bench", "detail-type": "go", "detail": {}}, timeout=3600)
            elapsed = time.perf_counter() - started
    assert result.ok and result.tasks == tasks, result
    return elapsed, waves, planning[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--wave", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    parser.add_argument("--against", metavar="REV", help="compare with git revision REV, in alternating processes")
    parser.add_argument("--pairs", type=int, default=4, help="with --against: processes per side (default 4)")
    args = parser.parse_args()
    if args.against:
        from bench._against import alternate, summary

        engine_args = ["--tasks", str(args.tasks), "--wave", str(args.wave), "--workers", str(args.workers)]
        engine_args += ["--repeat", str(max(args.repeat, 2)), "--store", args.store]
        print(summary(*alternate(args.against, args.pairs, engine_args)))
        return
    print(
        f"{'tasks':>6} {'wave':>5} {'workers':>7} {'seconds':>8} {'tasks/s':>8} {'µs/task':>8} {'ms/wave':>8}"
        f" {'peak MiB':>9} {'planner':>8}"
    )
    for _ in range(args.repeat):
        elapsed, waves, planning = run_timed(args.tasks, args.wave, args.workers, store=args.store)
        print(
            f"{args.tasks:>6} {args.wave:>5} {args.workers:>7} {elapsed:>8.2f} {args.tasks / elapsed:>8.0f} "
            f"{elapsed / args.tasks * 1e6:>8.0f} {elapsed / waves * 1000:>8.1f}"
            f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>9.0f} {planning / args.tasks * 1e6:>8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
