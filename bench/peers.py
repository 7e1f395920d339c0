"""Engine overhead side by side: this engine and its peers on one workload, each run in a process of its own.

Run: ``make bench-peers`` (installs the peers into ``.venv-peers`` first, from ``bench/peers-requirements.txt``), or
``.venv/bin/python bench/peers.py --peers-python .venv-peers/bin/python [--waves 20] [--widths 1,50,200]
[--workers 1,2,4] [--repeat 3]``.

The workload: a zero-latency planner asks for ``width`` no-op tasks at once, every task runs, their results are
gathered, and the planner runs again; ``waves`` times. Engines:

- ``arbiter-memory``: the real runtime (coordinator, workers, wrapper, trusted calls, completion events), every port
  in memory; ``arbiter-sqlite``: the same on the embedded SQLite store (crash-safe).
- ``strands-graph``: Strands' ``Graph`` (see ``bench/_peer_workloads.py`` for how a wave maps onto it);
  ``langgraph-send`` and ``langgraph-saver``: LangGraph fanning out with ``Send``, without and with its in-memory
  checkpointer.
- ``threads``: a bare ``ThreadPoolExecutor`` (the floor of running tasks on threads at all).
- ``floor-memory`` and ``floor-sqlite``: the floor of this engine's per-task records on that store (each task made
  with its token and its input checked; the wave persisted, claimed and completed, one transaction per transition
  for the whole wave) with nothing else: no planner, queue, worker or completion event. No design that
  keeps those records can cost less per task (see ``bench/_record_floor.py``).

Each (engine, width, workers) runs in a fresh process: a warm-up run of one wave, then the timed run, whose wall time
per task and the process's peak memory are printed; the median of ``--repeat`` processes is shown, with the ratio to
``arbiter-sqlite`` and ``arbiter-memory`` of the same width and workers. Peers run only where their environment is
given (``--peers-python``); the peers are never dependencies of this project.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
OURS = ("arbiter-memory", "arbiter-sqlite", "floor-memory", "floor-sqlite", "threads")
PEERS = ("strands-graph", "langgraph-send", "langgraph-saver")


def _threads(waves: int, width: int, workers: int) -> int:
    gathered = 0
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(waves):
            gathered += len(list(pool.map(lambda i: i, range(width))))
    return gathered


def _timed(run: Callable[[int, int, int], int]) -> Callable[[int, int, int], float]:
    def timed(waves: int, width: int, workers: int) -> float:
        started = time.perf_counter()
        tasks = run(waves, width, workers)
        elapsed = time.perf_counter() - started
        assert tasks == waves * width, tasks
        return elapsed

    return timed


def _workload(engine: str) -> Callable[[int, int, int], float]:
    """The engine's run: (waves, width, workers) -> seconds of the orchestration itself."""
    if engine == "threads":
        return _timed(_threads)
    if engine.startswith("arbiter-"):
        import engine as arbiter_engine  # bench/engine.py: it puts the repository root first on sys.path

        store = engine.removeprefix("arbiter-")

        def ours(waves: int, width: int, workers: int) -> float:
            # The runtime's start and stop (threads, store files) are not per-task work: as bench/engine.py does,
            # this times the orchestration alone.
            elapsed, _ = arbiter_engine.run_once(waves * width, width, workers, store=store)
            return elapsed

        return ours
    if engine.startswith("floor-"):
        sys.path.insert(0, str(HERE.parent))
        import _record_floor

        return _record_floor.record_floor(engine.removeprefix("floor-"))
    import _peer_workloads

    return _timed(_peer_workloads.PEERS[engine])


def measure(engine: str, waves: int, width: int, workers: int) -> dict[str, object]:
    """Run one engine in this process: a warm-up wave, then the timed run."""
    run = _workload(engine)
    run(1, width, workers)
    elapsed = run(waves, width, workers)
    return {
        "engine": engine,
        "width": width,
        "workers": workers,
        "tasks": waves * width,
        "us_per_task": elapsed / (waves * width) * 1e6,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _child(python: str, engine: str, waves: int, width: int, workers: int) -> dict[str, object] | str:
    argv = [python, str(HERE / "peers.py"), "--child", engine, "--waves", str(waves)]
    argv += ["--widths", str(width), "--workers", str(workers)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False, cwd=HERE.parent)
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waves", type=int, default=20)
    parser.add_argument("--widths", default="1,50,200", help="comma-separated wave widths")
    parser.add_argument("--workers", default="2", help="comma-separated worker counts (e.g. 1,2,4)")
    parser.add_argument("--repeat", type=int, default=3, help="processes per cell; the median is shown")
    parser.add_argument("--engines", default=",".join(OURS + PEERS))
    parser.add_argument("--peers-python", help="the Python of an environment with the peers (make bench-peers)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    if args.child:
        print(json.dumps(measure(args.child, args.waves, widths[0], workers[0])))
        return
    engines = [e for e in args.engines.split(",") if e]
    if args.peers_python is None or not os.access(args.peers_python, os.X_OK):
        skipped = [e for e in engines if e in PEERS]
        engines = [e for e in engines if e not in PEERS]
        if skipped:
            print(f"(no --peers-python: {', '.join(skipped)} left out; `make bench-peers` installs them)")
    print(f"{args.waves} waves of WIDTH no-op tasks; median of {args.repeat} processes; load {os.getloadavg()[0]:.1f}")
    print(f"{'engine':<16} {'width':>5} {'workers':>7} {'µs/task':>9} {'peak MiB':>9} {'÷ sqlite':>9} {'÷ memory':>9}")
    for width in widths:
        for count in workers:
            cells: dict[str, float] = {}
            for engine in engines:
                python = args.peers_python if engine in PEERS else sys.executable
                runs = [_child(python, engine, args.waves, width, count) for _ in range(args.repeat)]
                failed = [r for r in runs if isinstance(r, str)]
                if failed:
                    print(f"{engine:<16} {width:>5} {count:>7}   failed: {failed[0][:90]}", flush=True)
                    continue
                good = [r for r in runs if isinstance(r, dict)]
                per_task = statistics.median(float(str(r["us_per_task"])) for r in good)
                peak = max(float(str(r["peak_mib"])) for r in good)
                cells[engine] = per_task
                ratios = [
                    f"{per_task / cells[ref]:>9.2f}" if ref in cells else f"{'':>9}"
                    for ref in ("arbiter-sqlite", "arbiter-memory")
                ]
                print(
                    f"{engine:<16} {width:>5} {count:>7} {per_task:>9.0f} {peak:>9.0f} {' '.join(ratios)}", flush=True
                )


if __name__ == "__main__":
    main()
