"""Reactive tasks: latency from a note's write to the start of the task its trigger adds, per backend.

Run: ``.venv/bin/python bench/triggers.py [--rounds 5] [--notes 10]`` (or ``make bench``).

Each round is one orchestration: a scripted planner calls ``--notes`` trusted ``writer`` tasks in one wave; each
writes the note ``ping:<i>``, which fires the trigger of the trusted ``reactor`` agent. The latency of a reaction is
the time from the note's write (its ``updated_at``, stamped by the blackboard) to the start of the reactor's handler
(wall clock, same process). In between: the writer's executor adds the reactive task to the open wave (one
conditional write), records the writer's result, emits its completion; the coordinator dispatches the reactive task;
a worker claims it and starts the handler. Backends:

- ``memory``: every adapter in memory;
- ``sqlite``: the embedded default (SQLite blackboard, registry and queue in a temporary ``ARBITER_HOME``);
- ``moto``: the DynamoDB blackboard and registry under moto in-process (calls serialized, as moto needs), with the
  in-memory queue and bus: it shows the cost of the DynamoDB writes (moto's, not the service's round trips).

Then bus triggers: ``--events`` events, one at a time, published on the runtime's bus; each fires the bus trigger of
the trusted ``listener`` agent, which starts a standing orchestration. The latency is the time from just before the
publish to the start of the listener's handler. In between: the coordinator matches the event against the registered
bus triggers, creates the orchestration (conditional on the event id), stores its wave (compare-and-set) and
dispatches it; a worker claims the task and starts the handler.

Prints the median, the 90th percentile and the maximum per backend, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from arbiter import Deployment, EngineSettings, LocalRuntime
from arbiter.testing import ScriptedModel
from blackboard import Backends, Budget, Event, memory_backends
from blackboard._base import utcnow
from blackboard.adapters import InProcessEventBus, MemoryCodeStore, MemoryTaskQueue
from wrapper import sdk

BACKENDS = ("memory", "sqlite", "moto")


def open_backends(name: str, home: Path, stack: ExitStack) -> Backends | None:
    """The backends of ``name`` (``None``: the runtime's own embedded default in ``home``)."""
    if name == "memory":
        return memory_backends()
    if name == "sqlite":
        return None
    from moto import mock_aws

    from blackboard.adapters.aws import DynamoDBBlackboard, DynamoDBRegistry
    from tests.aws_support import (
        MotoSerializedClient,
        create_tables,
        dynamodb_client,
        moto_transactions_without_table_copies,
    )

    stack.enter_context(mock_aws())
    stack.enter_context(moto_transactions_without_table_copies())
    client = MotoSerializedClient(dynamodb_client())
    names = (f"blackboard-{uuid.uuid4().hex[:8]}", f"registry-{uuid.uuid4().hex[:8]}")
    create_tables(client, *names)
    return Backends(
        DynamoDBBlackboard(names[0], client=client, ttl_days=None),
        DynamoDBRegistry(names[1], client=client),
        MemoryCodeStore(),
        MemoryTaskQueue(),
        InProcessEventBus(),
    )


def run_backend(name: str, rounds: int, notes: int) -> list[float]:
    """The latencies (ms) of every reaction of ``rounds`` orchestrations on backend ``name``."""
    started: dict[str, datetime] = {}
    lock = threading.Lock()

    def writer(i: int) -> int:
        sdk.note(f"ping:{i}", i)
        return i

    def reactor(key: str) -> str:
        now = utcnow()
        with lock:
            started[key] = now
        return key

    turns: list[dict[str, object]] = []
    for _ in range(rounds):
        turns += [{"tool_calls": [{"name": "writer", "input": {"i": i}} for i in range(notes)]}, {"text": "done"}]
    latencies: list[float] = []
    budget = Budget(max_tasks=2 * notes, timeout_seconds=600)
    with tempfile.TemporaryDirectory() as home, ExitStack() as stack:
        backends = open_backends(name, Path(home), stack)
        with LocalRuntime(
            home,
            model=ScriptedModel(turns),
            deployment=Deployment(backends=backends),
            settings=EngineSettings(budget=budget),
        ) as runtime:
            runtime.register_agent("writer", "Writes a ping note.", writer)
            trigger = {"pattern": {"note": {"key": [{"prefix": "ping:"}]}}, "input": {"key": "$.note.key"}}
            runtime.register_agent("reactor", "Reacts to a ping.", reactor, triggers=[trigger])
            for round_ in range(rounds):
                started.clear()
                result = runtime.run({"source": "bench", "detail-type": "go", "detail": {"round": round_}}, timeout=600)
                assert result.ok and result.tasks == 2 * notes, result
                for note in runtime.orchestration(result.orchestration_id).notes:
                    if note.key.startswith("ping:"):
                        latencies.append((started[note.key] - note.updated_at).total_seconds() * 1000)
    return latencies


def run_bus_backend(name: str, events: int) -> list[float]:
    """The latencies (ms) from publishing each of ``events`` bus events to the start of its triggered task."""
    started: dict[str, datetime] = {}
    lock = threading.Lock()

    def listener(event: str) -> str:
        now = utcnow()
        with lock:
            started[event] = now
        return event

    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as home, ExitStack() as stack:
        backends = open_backends(name, Path(home), stack)
        with LocalRuntime(home, model=ScriptedModel([]), deployment=Deployment(backends=backends)) as runtime:
            trigger = {"pattern": {"source": ["bench.bus"]}, "input": {"event": "$.id"}}
            runtime.register_agent("listener", "Listens to the bench's events.", listener, triggers=[trigger])
            for n in range(events):
                event = Event.parse({"id": f"bench-{n}", "source": "bench.bus", "detail-type": "go", "detail": {}})
                published = utcnow()
                runtime.backends.bus.publish([event])
                standing = runtime.backends.blackboard.find_orchestration(f"triggers:{event.id}")
                assert standing is not None
                result = runtime.wait(standing.id, timeout=600)
                assert result.ok, result
                latencies.append((started[event.id] - published).total_seconds() * 1000)
    return latencies


def _line(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return f"{name:<7} n={len(ms):<4} median {statistics.median(ms):7.2f} ms  p90 {p90:7.2f} ms  max {ms[-1]:7.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="orchestrations per backend")
    parser.add_argument("--notes", type=int, default=10, help="notes (so reactions) per orchestration")
    parser.add_argument("--events", type=int, default=20, help="bus events (one at a time) per backend")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only these (repeat); default: all")
    args = parser.parse_args()
    print(f"note write -> reactive task start, {args.rounds} orchestrations x {args.notes} notes per backend")
    for name in args.backend or BACKENDS:
        print(_line(name, run_backend(name, args.rounds, args.notes)))
    print(f"bus event published -> triggered task start (standing orchestration), {args.events} events per backend")
    for name in args.backend or BACKENDS:
        print(_line(name, run_bus_backend(name, args.events)))


if __name__ == "__main__":
    main()
