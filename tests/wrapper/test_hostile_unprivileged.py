"""The hostile corpus again without root: as ``nobody``, without namespaces, the way every Lambda function runs.

CI runs as root, where the plain run of ``test_hostile.py`` gets a dedicated uid and namespaces; this runs the same
file in a subprocess as an unprivileged user. Where the machine has Landlock nothing of the corpus may be skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from wrapper.sandbox import sandbox_capabilities

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("unprivileged.py")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="not root: the plain run of test_hostile.py already is the unprivileged mode",
)
def test_the_hostile_corpus_holds_as_an_unprivileged_user() -> None:
    home = tempfile.mkdtemp(prefix="arbiter-nobody-")
    argv = [sys.executable, str(HELPER), home, "-m", "pytest", "tests/wrapper/test_hostile.py"]
    argv += ["-q", "-rs", "-p", "no:cacheprovider"]
    try:
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    report = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, report
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary, report
    if sandbox_capabilities().landlock >= 6:
        assert "skipped" not in summary, report  # every protection of the corpus is there without root
