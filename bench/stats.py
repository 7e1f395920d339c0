"""Agent stats: atomic updates per second (with the duration histogram) and the cost of reading p95.

Run: ``.venv/bin/python bench/stats.py``. Prints one line per backend and thread count. Each update is one
``Registry.add_stats`` of one invocation (on SQLite one write transaction that reads, adds and writes the histogram).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blackboard import AgentManifest, Registry, TaskState
from blackboard.adapters import MemoryRegistry, SqliteDatabase, SqliteRegistry
from blackboard.ports.code_store import sha256_hex
from blackboard.ports.registry import StatsDelta
from blackboard.records import CodeRef


def _registry(kind: str, root: Path) -> Registry:
    registry: Registry = MemoryRegistry() if kind == "memory" else SqliteRegistry(SqliteDatabase(root / "bench.db"))
    digest = sha256_hex(b"noop")
    registry.put(
        AgentManifest(name="noop", version=1, description="Does nothing.", code=CodeRef(sha256=digest, key=digest))
    )
    return registry


def _updates(registry: Registry, count: int, threads: int) -> float:
    delta = StatsDelta.of(TaskState.SUCCEEDED, 42.0, 10)

    def work(_: int) -> None:
        for _ in range(count // threads):
            registry.add_stats("noop", 1, delta)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--updates", type=int, default=2000)
    args = parser.parse_args()
    for kind in ("memory", "sqlite"):
        for threads in (1, 4):
            with tempfile.TemporaryDirectory() as root:
                registry = _registry(kind, Path(root))
                rate = _updates(registry, args.updates, threads)
                stats = registry.get("noop", 1).stats
                assert stats.invocations == args.updates // threads * threads
                started = time.perf_counter()
                for _ in range(1000):
                    stats.p95_ms  # noqa: B018 - the property is what is timed
                p95_us = (time.perf_counter() - started) * 1000
                print(f"{kind:<7} threads={threads}  {rate:9.0f} stats updates/s   p95 read {p95_us:5.1f} us")


if __name__ == "__main__":
    main()
