"""``bench/engine.py --against REV``: two revisions measured in alternating processes, then compared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench._against import Side, per_task, summary

ROOT = Path(__file__).resolve().parents[2]

TABLE = """ tasks  wave workers  seconds  tasks/s  µs/task  ms/wave  peak MiB
  1000    50       2     1.20      833     1200     60.0       140
  1000    50       2     1.10      909     1100     55.0       141
"""


def test_the_per_task_column_is_read_from_the_engines_table() -> None:
    assert per_task(TABLE) == [1200.0, 1100.0]
    with pytest.raises(ValueError, match="not the table"):
        per_task("Traceback (most recent call last):\n")


def test_the_summary_gives_both_medians_the_ratio_and_the_pairs_the_after_won() -> None:
    text = summary(Side("before", [1000.0, 1200.0, 1100.0]), Side("after", [900.0, 1250.0, 990.0]))
    assert "before: median 1100 µs/task (processes 1000 to 1200)" in text
    assert "after: median 990 µs/task (processes 900 to 1250)" in text
    assert "after / before: 0.900; after faster in 2 of 3 pairs" in text


def _engine(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/engine.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def _against(*args: str) -> subprocess.CompletedProcess[str]:
    return _engine("--against", *args)


def _worktrees() -> str:
    return subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_a_revision_and_this_tree_run_in_turn_and_the_checkout_is_removed() -> None:
    done = _against("HEAD", "--pairs", "1", "--tasks", "20", "--wave", "10", "--repeat", "2", "--store", "memory")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("pair 1/1, before (HEAD): median ")
    assert lines[1].startswith("pair 1/1, after (this tree): median ")
    assert "after faster in" in lines[-1]
    assert "arbiter-against-" not in _worktrees()


def test_an_unknown_revision_is_named() -> None:
    done = _against("no-such-revision-anywhere", "--pairs", "1")
    assert done.returncode != 0
    assert "cannot check out 'no-such-revision-anywhere'" in done.stderr


def test_the_engines_table_gives_the_planners_share_of_each_task() -> None:
    done = _engine("--tasks", "40", "--wave", "10", "--repeat", "1", "--store", "memory")
    assert done.returncode == 0, done.stderr[-2000:]
    header, row = done.stdout.splitlines()
    assert header.split()[-1] == "planner"
    assert 0 < float(row.split()[-1]) < per_task(done.stdout)[0]
