"""Every bench script starts from the repository root as documented (``python bench/NAME.py``): its imports resolve.

The script's own directory comes first on ``sys.path``, and ``bench/blackboard.py`` shadows the ``blackboard``
package there: a script must put the repository root first before it imports the project.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(path for path in (ROOT / "bench").glob("*.py") if not path.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_help_runs(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower()


SMALL = ["--waves", "2", "--widths", "3", "--repeat", "1"]


def _peers(engines: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "bench/peers.py", "--engines", engines, *SMALL],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_peers_runs_this_engine_and_the_floor_without_the_peers() -> None:
    done = _peers("arbiter-memory,threads,langgraph-send")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {
        line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith(("arbiter", "threads"))
    }
    assert set(rows) == {"arbiter-memory", "threads"}
    assert float(rows["threads"][3]) > 0 and rows["arbiter-memory"][-1] == "1.00"
    assert "langgraph-send left out" in done.stdout


def test_the_peers_bench_prints_the_record_floors_without_the_peers_environment() -> None:
    done = _peers("floor-memory,floor-sqlite")
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("floor-")]
    assert [row[:3] for row in rows] == [["floor-memory", "3", "2"], ["floor-sqlite", "3", "2"]]
    assert all(float(row[3]) > 0 for row in rows)
