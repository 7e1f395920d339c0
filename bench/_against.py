"""``bench/engine.py --against REV``: this tree and revision REV measured in turn, each run in a process of its own.

On a shared machine the figures of one process drift by tens of percent within minutes, so a before and an after
measured minutes apart say little. Here the two alternate: REV's ``bench/engine.py`` (checked out in a temporary
git worktree, run with the same interpreter) and this tree's, ``pairs`` times, each process with the same workload.
The first run of each process warms it up and is left out; each process then counts as the median of its other
runs. REV's ``bench/engine.py`` must take ``--store`` (December 2026 on).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Side", "alternate", "per_task", "summary"]

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Side:
    """The per-process medians (µs per task) of one side."""

    label: str
    medians: list[float]


def per_task(output: str) -> list[float]:
    """The µs-per-task column of ``bench/engine.py``'s table."""
    lines = output.splitlines()
    if not lines or "µs/task" not in lines[0]:
        raise ValueError(f"not the table of bench/engine.py: {output[:200]!r}")
    column = lines[0].split().index("µs/task")
    return [float(line.split()[column]) for line in lines[1:] if line.strip()]


def summary(before: Side, after: Side) -> str:
    """Both sides' medians, their ratio, and in how many pairs the after was the faster."""
    old, new = statistics.median(before.medians), statistics.median(after.medians)
    faster = sum(a < b for b, a in zip(before.medians, after.medians, strict=True))
    return (
        f"{before.label}: median {old:.0f} µs/task (processes {_range(before.medians)})\n"
        f"{after.label}: median {new:.0f} µs/task (processes {_range(after.medians)})\n"
        f"after / before: {new / old:.3f}; after faster in {faster} of {len(after.medians)} pairs"
    )


def _range(values: Sequence[float]) -> str:
    return f"{min(values):.0f} to {max(values):.0f}"


def alternate(
    revision: str, pairs: int, engine_args: Sequence[str], *, say: Callable[[str], None] = print
) -> tuple[Side, Side]:
    """Run REV's and this tree's ``bench/engine.py`` in turn, ``pairs`` times; print each process as it ends."""
    if pairs < 1:
        raise ValueError("pairs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="arbiter-against-") as tmp:
        tree = Path(tmp) / "tree"
        added = subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), revision],
            capture_output=True,
            text=True,
            check=False,
        )
        if added.returncode != 0:
            raise SystemExit(f"cannot check out {revision!r}: {added.stderr.strip()}")
        try:
            before, after = Side(f"before ({revision})", []), Side("after (this tree)", [])
            for pair in range(1, pairs + 1):
                for side, root in ((before, tree), (after, ROOT)):
                    median = _one_process(root, engine_args)
                    side.medians.append(median)
                    say(f"pair {pair}/{pairs}, {side.label}: median {median:.0f} µs/task")
            return before, after
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def _one_process(root: Path, engine_args: Sequence[str]) -> float:
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "engine.py"), *engine_args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/engine.py failed in {root}:\n{done.stderr[-2000:]}")
    figures = per_task(done.stdout)
    if len(figures) < 2:
        raise SystemExit("--against needs --repeat 2 or more (the first run of each process is a warm-up)")
    return statistics.median(figures[1:])
