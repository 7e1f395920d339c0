"""Every example runs as documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_blackboard_basics(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "blackboard_basics.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "tooluse_1: applied=True closes_wave=False duplicate=False" in out
    assert "tooluse_2: applied=True closes_wave=True duplicate=False" in out
    assert "finished completed - 2 burgers ready - notes: ['grill']" in out
    assert (tmp_path / "arbiter.db").is_file()
