"""What tracing costs: the facade without a provider, with a recording provider, and the sandbox span relay.

Run: ``.venv/bin/python bench/tracing.py`` (``--runs`` to change the sample size). Prints per-span cost of
``blackboard.tracing.start_span`` with no tracer provider set (OpenTelemetry's no-op) and with an SDK provider
exporting to memory, then the p50/p95 of one warm-pool sandbox run of a trivial handler without and with a
``traceparent`` (the child then records ``sandbox.child`` and the pool re-emits it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from blackboard import tracing
from wrapper.sandbox import SandboxPool, SandboxRequest

CONTEXT = {"orchestration_id": "bench", "task_id": "t", "agent": "bench"}


def per_span_us(count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        with tracing.start_span("bench", attributes={"n": 1}):
            pass
    return (time.perf_counter() - started) / count * 1e6


def sandbox_ms(pool: SandboxPool, runs: int, traceparent: str | None) -> tuple[float, float]:
    request = SandboxRequest(
        code=b"def handler():\n    return {'ok': True}\n",
        module_name="bench",
        input={},
        context={**CONTEXT, "traceparent": traceparent},
    )
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        assert pool.run(request).status == "succeeded"
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    print(f"start_span, no provider (no-op):   {per_span_us(20_000):6.1f} us per span")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    print(f"start_span, SDK provider (memory): {per_span_us(20_000):6.1f} us per span")
    exporter.clear()
    with SandboxPool(size=2) as pool:
        sandbox_ms(pool, 5, None)
        plain = sandbox_ms(pool, args.runs, None)
        with tracing.start_span("bench.parent"):
            traced = sandbox_ms(pool, args.runs, tracing.current_traceparent())
    relayed = sum(1 for s in exporter.get_finished_spans() if s.name == "sandbox.child")
    print(f"sandbox run, no traceparent:  p50 {plain[0]:5.1f} ms  p95 {plain[1]:5.1f} ms")
    print(f"sandbox run, traced child:    p50 {traced[0]:5.1f} ms  p95 {traced[1]:5.1f} ms  ({relayed} child spans)")


if __name__ == "__main__":
    main()
