"""Trusted (in-process) calls that hang: does a healthy agent still succeed, and how long do close and exit take?

Run: ``.venv/bin/python bench/trusted_calls.py [--hung 8] [--hang-seconds 30]``.

Each scenario runs in a fresh interpreter (the exit time is part of the figure) with the embedded runtime, two
workers, a scripted planner and a reflection policy that judges a version after 2 invocations:

- ``hung wave``: one wave of ``--hung`` calls to a trusted agent that sleeps ``--hang-seconds`` (its timeout is 1 s,
  one attempt), then a wave with one call to a healthy trusted agent (timeout 1 s, 3 attempts). Prints how the
  healthy task ended, its attempts, whether reflection quarantined it, then the time ``close()`` took and the time
  from its return to the end of the process.
- ``close while running``: one call to a trusted agent that sleeps ``--hang-seconds`` with a 60 s timeout;
  ``close()`` is called as soon as it runs. Prints the time ``close()`` took and the time to the end of the process.
- ``baseline``: the same runtime with one healthy call and nothing hanging: what exit costs anyway (tearing down
  the interpreter and the sandbox pool; it grows with the machine's load).

A process still alive ``--cap`` seconds after ``close()`` returned is killed and reported as such.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EVENT = {"source": "bench", "detail-type": "go", "detail": {}}


def _runtime(home: str, turns: list[dict[str, Any]]) -> Any:
    from arbiter import Deployment, EngineSettings, LocalRuntime, ReflectionPolicy
    from arbiter.testing import ScriptedModel
    from blackboard import RetryPolicy

    settings = EngineSettings(
        retry=RetryPolicy(base_seconds=0.01, max_seconds=0.05), reflection=ReflectionPolicy(min_invocations=2)
    )
    return LocalRuntime(
        home, model=ScriptedModel(turns), settings=settings, deployment=Deployment(workers=2, sweep_interval=0.2)
    )


def _hung_wave(home: str, hung: int, hang_seconds: float) -> dict[str, Any]:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "hang", "input": {"i": i}} for i in range(hung)]},
        {"tool_calls": [{"name": "healthy", "input": {"i": 0}}]},
        {"text": "done"},
    ]
    runtime = _runtime(home, turns)

    def hang(i: int) -> int:
        time.sleep(hang_seconds)
        return i

    def healthy(i: int) -> int:
        return i

    runtime.register_agent("hang", "Hangs.", hang, timeout_seconds=1.0, max_attempts=1)
    runtime.register_agent("healthy", "Answers at once.", healthy, timeout_seconds=1.0, max_attempts=3)
    result = runtime.run(EVENT, timeout=600)
    task = next(t for t in runtime.orchestration(result.orchestration_id).tasks if t.agent.name == "healthy")
    manifest = runtime.backends.registry.get("healthy", task.agent.version)
    started = time.perf_counter()
    runtime.close()
    return {
        "healthy": task.state.value,
        "healthy_attempts": task.attempt,
        "healthy_agent": manifest.state.value,
        "close_s": time.perf_counter() - started,
    }


def _close_while_running(home: str, hang_seconds: float) -> dict[str, Any]:
    runtime = _runtime(home, [{"tool_calls": [{"name": "hang", "input": {"i": 0}}]}, {"text": "done"}])
    running = []

    def hang(i: int) -> int:
        running.append(i)
        time.sleep(hang_seconds)
        return i

    runtime.register_agent("hang", "Hangs.", hang, timeout_seconds=60.0, max_attempts=1)
    runtime.submit(EVENT)
    deadline = time.monotonic() + 60
    while not running and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    runtime.close()
    return {"close_s": time.perf_counter() - started}


def _baseline(home: str) -> dict[str, Any]:
    runtime = _runtime(home, [{"tool_calls": [{"name": "healthy", "input": {"i": 0}}]}, {"text": "done"}])
    runtime.register_agent("healthy", "Answers at once.", lambda i: i, timeout_seconds=1.0)
    runtime.run(EVENT, timeout=600)
    started = time.perf_counter()
    runtime.close()
    return {"close_s": time.perf_counter() - started}


def _child(scenario: str, hung: int, hang_seconds: float) -> None:
    import logging

    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as home:
        if scenario == "hung-wave":
            figures = _hung_wave(home, hung, hang_seconds)
        elif scenario == "baseline":
            figures = _baseline(home)
        else:
            figures = _close_while_running(home, hang_seconds)
        print(json.dumps(figures), flush=True)
    # From here the interpreter exits: whatever still runs in it decides how long that takes.


def _run(scenario: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", scenario, "--hung", str(args.hung)]
    command += ["--hang-seconds", str(args.hang_seconds)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    closed = time.perf_counter()
    try:
        process.wait(timeout=args.cap)
        exit_s: float | None = time.perf_counter() - closed
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        exit_s = None
    figures: dict[str, Any] = json.loads(line) if line else {"error": f"exit status {process.returncode}"}
    figures["exit_s"] = exit_s
    return figures


def _seconds(value: float | None, cap: float) -> str:
    return f"> {cap:g} s (killed)" if value is None else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hung", type=int, default=8, help="hung calls in the first wave")
    parser.add_argument("--hang-seconds", type=float, default=30.0, help="how long a hung call sleeps")
    parser.add_argument("--cap", type=float, default=90.0, help="seconds to wait for the process to end")
    parser.add_argument("--child", choices=["hung-wave", "close-while-running", "baseline"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.hung, args.hang_seconds)
        return
    baseline = _run("baseline", args)
    print(
        f"baseline (one healthy call, nothing hangs): close() {_seconds(baseline.get('close_s'), args.cap)}, "
        f"then exit {_seconds(baseline['exit_s'], args.cap)}",
        flush=True,
    )
    wave = _run("hung-wave", args)
    print(
        f"hung wave ({args.hung} calls sleeping {args.hang_seconds:g} s, timeout 1 s): healthy task "
        f"{wave.get('healthy')} after {wave.get('healthy_attempts')} attempt(s), agent {wave.get('healthy_agent')}; "
        f"close() {_seconds(wave.get('close_s'), args.cap)}, then exit {_seconds(wave['exit_s'], args.cap)}",
        flush=True,
    )
    running = _run("close-while-running", args)
    print(
        f"close while a call runs (sleeping {args.hang_seconds:g} s, timeout 60 s): "
        f"close() {_seconds(running.get('close_s'), args.cap)}, then exit {_seconds(running['exit_s'], args.cap)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
