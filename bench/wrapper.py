"""Sandbox overhead per task: cold (a fresh interpreter per task) against warm (a pool of fork servers).

Run: ``.venv/bin/python bench/wrapper.py`` (``--runs``/``--cold-runs`` to change the sample sizes). Prints one line
per configuration: the p50 and p95 wall-clock time of one ``run`` call, in milliseconds, for a trivial handler and
for one whose module does ``from strands import Agent``. Tasks run one after the other (latency, not throughput).

The first line says which protections were in force: as root on Linux every child gets its own uid and private
mount and network namespaces, and that work is part of the figures. ``cold`` is :func:`wrapper.sandbox.run_cold`
(a new interpreter, nothing preloaded); ``warm`` is a :class:`wrapper.sandbox.SandboxPool` of two zygotes that
preloaded ``strands``, measured after a few warm-up tasks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wrapper.sandbox import SandboxOutcome, SandboxPool, SandboxRequest, run_cold, sandbox_capabilities

HANDLERS = {
    "trivial": "def handler():\n    return {'ok': True}\n",
    "strands": "import strands\nfrom strands import Agent\n\ndef handler():\n    return {'agent': Agent.__name__}\n",
}
CONTEXT = {"orchestration_id": "bench", "task_id": "t", "agent": "bench"}
WARM_UP = 5


def _request(code: str) -> SandboxRequest:
    return SandboxRequest(code=code.encode(), module_name="bench_agent", input={}, context=CONTEXT)


def _measure(run: Callable[[SandboxRequest], SandboxOutcome], request: SandboxRequest, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        outcome = run(request)
        times.append((time.perf_counter() - started) * 1000)
        if outcome.status != "succeeded":
            raise SystemExit(f"the benchmark task failed: {outcome}")
    return times


def _line(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{label:<16} runs={len(times):<4} p50={statistics.median(ordered):8.1f} ms   p95={p95:8.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="warm tasks per handler")
    parser.add_argument("--cold-runs", type=int, default=10, help="cold tasks per handler (about 1 s each)")
    args = parser.parse_args()
    print(f"capabilities: {sandbox_capabilities()}")
    with SandboxPool(size=2, preload=("strands",)) as pool:
        for name, code in HANDLERS.items():
            request = _request(code)
            _measure(pool.run, request, WARM_UP)
            print(_line(f"warm  {name}", _measure(pool.run, request, args.runs)), flush=True)
    for name, code in HANDLERS.items():
        print(_line(f"cold  {name}", _measure(run_cold, _request(code), args.cold_runs)), flush=True)


if __name__ == "__main__":
    main()
