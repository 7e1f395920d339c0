"""A small seeded chaos run (``bench/chaos.py``): a runtime and a worker process on one home, duplicates, kills.

Every orchestration ends, no task is lost or stuck, no side effect happens twice for one attempt, and no attempt
starts after its deadline (the deadlines are short: 1.5 s timeouts with 0.5 s of queue grace, as in the crash test).
"""

from __future__ import annotations

from pathlib import Path

from bench.chaos import ChaosConfig, _finish, run_chaos

SMALL = ChaosConfig(
    orchestrations=3,
    waves=3,
    tasks=3,
    seed=7,
    holds=(0.0, 0.1, 0.4),
    fail_share=0.15,
    timeout=1.5,
    grace=0.5,
    runtime_kills=(0.4,),
    worker_kills=(0.7,),
    duplicate_every=0.1,
    wait_seconds=120.0,
)


def test_a_small_chaos_run_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    figures = run_chaos(SMALL, home)
    _finish(figures, home)
    assert figures.runtime_kills == 1 and figures.worker_kills == 1
    assert figures.duplicates_sent > 0
    assert figures.terminal == figures.orchestrations == 3
    assert figures.tasks_lost == 0
    assert figures.tasks_stuck == 0
    assert figures.doubled_same_attempt == 0
    assert figures.late_starts == 0, figures
