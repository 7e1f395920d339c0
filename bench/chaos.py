"""Chaos run: a runtime and an ``arbiter worker`` process on one home, duplicates, SIGKILLs; what survives.

Run: ``.venv/bin/python bench/chaos.py [--orchestrations 20 --waves 4 --tasks 12] [--timeout 10 --grace 60]``.

A runtime process (``bench/_chaos_app.py``, ``queue="sqlite"``) submits ``--orchestrations`` orchestrations of
``--waves`` waves of ``--tasks`` sandboxed tasks; one ``arbiter worker`` process takes tasks from the same home.
Each task's handler reports its start (task, attempt, time, deadline) to a marker server on 127.0.0.1 before it
holds for a seeded while; some fail their first attempt (before any side effect). Meanwhile the driver re-sends task
messages through the queue port (current and older attempts, whatever the task's state), SIGKILLs the runtime's
process group at chosen points and starts it again, and SIGKILLs the worker process and starts another. Printed:

- orchestrations terminal; tasks lost (expected calls without a task, succeeded tasks that never ran), stuck (not
  done at the end); effects doubled for one attempt; effects doubled across attempts whose earlier attempt was not
  killed; late starts (a handler that started at or after its attempt's deadline);
- wave continuation: the time from the last result of a wave to the first task of the next one (p50, max);
- recovery after each SIGKILL of the runtime: from the restart until every attempt the killed process held is
  taken back or finished.

``--code-root`` runs the runtime and the worker from another checkout (to measure the code before a change).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arbiter._tool_calls import task_message  # noqa: E402
from blackboard import Task, TaskState, local_backends  # noqa: E402
from blackboard.adapters import SqliteTaskQueue  # noqa: E402
from tests.markers import MARKING_HANDLER, Mark, Markers, marker_server  # noqa: E402

APP = Path(__file__).with_name("_chaos_app.py")


@dataclass(frozen=True)
class ChaosConfig:
    """What a chaos run does."""

    orchestrations: int = 20
    waves: int = 4
    tasks: int = 12
    seed: int = 23
    holds: tuple[float, ...] = (0.0, 0.05, 0.2, 0.8)
    fail_share: float = 0.1
    timeout: float = 10.0
    grace: float = 60.0
    stalled_after: float = 60.0
    runtime_workers: int = 2
    worker_concurrency: int = 2
    runtime_kills: tuple[float, ...] = (0.3, 0.6)  # shares of the expected handler starts
    worker_kills: tuple[float, ...] = (0.45,)
    duplicate_every: float = 0.1  # seconds between re-sent messages
    wait_seconds: float = 600.0
    code_root: str = str(ROOT)


@dataclass
class ChaosFigures:
    """What a chaos run measured."""

    orchestrations: int = 0
    terminal: int = 0
    completed: int = 0
    tasks_expected: int = 0
    tasks_lost: int = 0
    tasks_stuck: int = 0
    handler_starts: int = 0
    duplicates_sent: int = 0
    doubled_same_attempt: int = 0
    doubled_not_killed: int = 0
    late_starts: int = 0
    wave_gap_p50_s: float = 0.0
    wave_gap_max_s: float = 0.0
    recovery_s: list[float] = field(default_factory=list)
    runtime_kills: int = 0
    worker_kills: int = 0
    wall_s: float = 0.0


def _env(config: ChaosConfig) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": config.code_root}


def _start_runtime(config: ChaosConfig, settings: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(APP), json.dumps(settings)],
        env=_env(config),
        cwd=config.code_root,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _start_worker(config: ChaosConfig, home: Path) -> subprocess.Popen[str]:
    launcher = (
        f"import sys; sys.path.insert(0, {config.code_root!r}); sys.argv[0] = 'arbiter'; "
        "from arbiter.cli import main; main()"
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            launcher,
            "worker",
            "--home",
            str(home),
            "--concurrency",
            str(config.worker_concurrency),
            "--model",
            "openai:chaos",
        ],
        env=_env(config),
        cwd=config.code_root,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _kill_group(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)
    if process.stdout is not None:
        process.stdout.close()


def _all_tasks(home: Path) -> list[Task]:
    backends = local_backends(home)
    try:
        board = backends.blackboard
        return [t for o in board.list_orchestrations(limit=10_000) for t in board.list_tasks(o.id)]
    finally:
        backends.close()


def _duplicates(home: Path, config: ChaosConfig, stop: threading.Event, sent: list[int]) -> None:
    """Re-send task messages (current or older attempts, any state) through the queue port until ``stop``."""
    rng = random.Random(config.seed)
    backends = local_backends(home)
    assert backends.database is not None
    queue = SqliteTaskQueue(backends.database, "tasks")
    try:
        while not stop.wait(config.duplicate_every):
            tasks = [
                t
                for o in backends.blackboard.list_orchestrations(limit=100)
                for t in backends.blackboard.list_tasks(o.id)
            ]
            if not tasks:
                continue
            task = rng.choice(tasks)
            attempt = rng.randint(1, task.attempt) if rng.random() < 0.3 else task.attempt
            queue.send([task_message(task).model_copy(update={"attempt": attempt})])
            sent[0] += 1
    finally:
        backends.close()


def _recovery(home: Path, held: list[tuple[str, str, int]], restarted: float, timeout: float) -> float:
    """Seconds from ``restarted`` until none of ``held`` (orchestration, task, attempt) is still running then."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        tasks = {(t.orchestration_id, t.task_id): t for t in _all_tasks(home)}
        still = [
            k
            for k in held
            if (t := tasks.get(k[:2])) is not None and t.state is TaskState.RUNNING and t.attempt == k[2]
        ]
        if not still:
            return max(0.0, time.monotonic() - restarted)
        time.sleep(0.1)
    return float("inf")


def run_chaos(config: ChaosConfig, home: Path) -> ChaosFigures:
    """Run the chaos scenario in ``home`` (a fresh directory) and measure it."""
    figures = ChaosFigures(orchestrations=config.orchestrations)
    expected = config.orchestrations * config.waves * config.tasks
    started = time.monotonic()
    killed: set[tuple[str, str, int]] = set()
    with marker_server() as markers:
        module = home.parent / "mark.py"
        module.write_text(MARKING_HANDLER)
        settings = {**asdict(config), "home": str(home), "port": markers.port, "module": str(module)}
        runtime = _start_runtime(config, settings)
        worker = _start_worker(config, home)
        stop, sent = threading.Event(), [0]
        duplicator = threading.Thread(target=_duplicates, args=(home, config, stop, sent), daemon=True)
        kills = sorted([(s, "runtime") for s in config.runtime_kills] + [(s, "worker") for s in config.worker_kills])
        try:
            home_ready = _wait(lambda: (home / "arbiter.db").exists(), 120)
            if home_ready:
                duplicator.start()
            for share, target in kills:
                if not _wait(lambda s=share: len(markers.marks) >= s * expected, config.wait_seconds):
                    break
                running = [t for t in _all_tasks(home) if t.state is TaskState.RUNNING]
                if target == "runtime":
                    _kill_group(runtime)
                    figures.runtime_kills += 1
                    held = [(t.orchestration_id, t.task_id, t.attempt) for t in running if _held_by(t, runtime.pid)]
                    killed.update(held)
                    restarted = time.monotonic()
                    runtime = _start_runtime(config, settings)
                    figures.recovery_s.append(round(_recovery(home, held, restarted, config.wait_seconds), 2))
                else:
                    _kill_group(worker)
                    figures.worker_kills += 1
                    killed.update(
                        (t.orchestration_id, t.task_id, t.attempt) for t in running if _held_by(t, worker.pid)
                    )
                    worker = _start_worker(config, home)
            try:
                runtime.communicate(timeout=config.wait_seconds)
            except subprocess.TimeoutExpired:
                _kill_group(runtime)
        finally:
            stop.set()
            _kill_group(runtime)
            _kill_group(worker)
            if duplicator.is_alive():
                duplicator.join(timeout=30)
        figures.duplicates_sent = sent[0]
        _measure(figures, _all_tasks(home), markers, expected, killed)
    figures.wall_s = round(time.monotonic() - started, 1)
    return figures


#: How an attempt ends when it was stopped from outside (its deadline, a kill, a lost holder) rather than by itself.
_KILLED = frozenset({"Timeout", "Crashed", "SandboxCrashed", "NoResult", "LeaseExpired", "NotStarted"})


def _killed(result: Any) -> bool:
    """Whether an earlier attempt was stopped from outside (timed out, killed): its effect may be repeated."""
    return result is not None and (
        result.status is TaskState.TIMED_OUT or (result.error is not None and result.error.type in _KILLED)
    )


def _held_by(task: Task, pid: int) -> bool:
    """Whether a running task was held by the process ``pid`` (any running task without a holder: unknown, yes)."""
    holder = getattr(task, "holder", None)
    return holder is None or holder.split("/")[1:2] == [str(pid)]


def _measure(
    figures: ChaosFigures, tasks: list[Task], markers: Markers, expected: int, killed: set[tuple[str, str, int]]
) -> None:
    backends_tasks = tasks
    marks: dict[str, list[Mark]] = {}
    for mark in markers.marks:
        marks.setdefault(mark.key, []).append(mark)
    figures.handler_starts = len(markers.marks)
    figures.late_starts = sum(1 for m in markers.marks if m.at >= m.deadline)
    by_orchestration: dict[str, list[Task]] = {}
    for task in backends_tasks:
        by_orchestration.setdefault(task.orchestration_id, []).append(task)
    figures.tasks_expected = expected
    figures.tasks_stuck = sum(1 for t in backends_tasks if not t.done)
    never_ran = sum(
        1
        for t in backends_tasks
        if t.state is TaskState.SUCCEEDED and not marks.get(f"{t.orchestration_id}/{t.task_id}")
    )
    figures.tasks_lost = max(0, expected - len(backends_tasks)) + never_ran
    by_key = {f"{t.orchestration_id}/{t.task_id}": t for t in backends_tasks}
    for key, seen in marks.items():
        attempts = [m.attempt for m in seen]
        figures.doubled_same_attempt += len(attempts) - len(set(attempts))
        orchestration_id, task_id = key.split("/", 1)
        task = by_key.get(key)
        ended = {r.attempt: r for r in task.attempts} if task is not None else {}
        earlier = sorted(set(attempts))[:-1]
        if any((orchestration_id, task_id, a) not in killed and not _killed(ended.get(a)) for a in earlier):
            figures.doubled_not_killed += 1
    gaps: list[float] = []
    for group in by_orchestration.values():
        waves: dict[int, list[Task]] = {}
        for task in group:
            waves.setdefault(task.wave, []).append(task)
        for wave, members in waves.items():
            following = waves.get(wave + 1)
            finished = [t.result.finished_at for t in members if t.result is not None and t.result.finished_at]
            if following and finished and len(finished) == len(members):
                gaps.append((min(t.created_at for t in following) - max(finished)).total_seconds())
    if gaps:
        figures.wave_gap_p50_s = round(statistics.median(gaps), 3)
        figures.wave_gap_max_s = round(max(gaps), 3)


def _finish(figures: ChaosFigures, home: Path) -> None:
    backends = local_backends(home)
    try:
        orchestrations = backends.blackboard.list_orchestrations(limit=10_000)
    finally:
        backends.close()
    figures.terminal = sum(1 for o in orchestrations if o.finished)
    figures.completed = sum(1 for o in orchestrations if o.status.value == "completed")


def measure(config: ChaosConfig) -> ChaosFigures:
    """One chaos run in a temporary home."""
    with tempfile.TemporaryDirectory(prefix="arbiter-chaos-") as root:
        home = Path(root) / "home"
        figures = run_chaos(config, home)
        _finish(figures, home)
    return figures


def _wait(condition: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orchestrations", type=int, default=20)
    parser.add_argument("--waves", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=10.0, help="the agent's timeout_seconds")
    parser.add_argument("--grace", type=float, default=60.0, help="queue_grace_seconds")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--code-root", default=str(ROOT), help="run the runtime and the worker from this checkout")
    args = parser.parse_args()
    config = ChaosConfig(
        orchestrations=args.orchestrations,
        waves=args.waves,
        tasks=args.tasks,
        timeout=args.timeout,
        grace=args.grace,
        seed=args.seed,
        code_root=args.code_root,
    )
    figures = measure(config)
    for name, value in asdict(figures).items():
        print(f"{name:>22}: {value}")


if __name__ == "__main__":
    main()
