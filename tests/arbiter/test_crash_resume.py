"""Crash-resume: SIGKILL the process in the middle of an orchestration, start it again, and it finishes with
nothing lost and nothing done twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

APP = Path(__file__).with_name("crash_app.py")
ROOT = Path(__file__).resolve().parents[2]


def _wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_sigkill_mid_orchestration_then_resume(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, str(APP), str(home), str(log), "first"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: log.exists() and "start 2" in log.read_text(), timeout=120)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the runtime and every process it started
        first.wait(timeout=30)
    assert log.read_text().splitlines() == ["start 1", "done 1", "start 2"]

    second = subprocess.run(
        [sys.executable, str(APP), str(home), str(log), "second"], env=env, capture_output=True, text=True, timeout=180
    )
    assert second.returncode == 0, second.stderr[-3000:]
    result = json.loads(second.stdout.strip().splitlines()[-1])
    assert result["status"] == "completed" and result["output"] == "all three steps done"
    lines = log.read_text().splitlines()
    # Step 1 finished before the crash and is not run again; step 2 was cut off and runs once more; step 3 once.
    assert lines == ["start 1", "done 1", "start 2", "start 2", "done 2", "start 3", "done 3"]

    from blackboard import local_backends

    backends = local_backends(home)
    tasks = backends.blackboard.list_tasks(result["id"])
    backends.close()
    assert [(t.task_id, t.state.value, t.attempt) for t in tasks] == [
        ("step1", "succeeded", 1),
        ("step2", "succeeded", 2),
        ("step3", "succeeded", 1),
    ]
    assert [a.status.value for a in tasks[1].attempts] == ["timed_out"]
