"""The task queue's settings reach every queue: ``queue_visibility_seconds`` and ``arbiter worker --visibility``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from arbiter import AgentDefinition, LocalRuntime, UsageError
from arbiter.cli import app
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from blackboard import AgentRef, TaskMessage, local_backends
from tests.arbiter.conftest import FAST, event
from wrapper import SandboxPool


def _hidden_for(runtime: LocalRuntime) -> float:
    """How much longer the one in-flight task message stays invisible (read while its task runs)."""
    database = runtime.backends.database
    assert database is not None
    with database.read() as conn:
        (visible_at,) = conn.execute("SELECT visible_at FROM queue_messages WHERE queue = 'tasks'").fetchone()
    return float(visible_at) - time.time()


def test_queue_visibility_seconds_is_honoured_with_the_sqlite_queue(tmp_path: Path, pool: SandboxPool) -> None:
    seen: list[float] = []
    holder: list[LocalRuntime] = []

    def look() -> str:
        seen.append(_hidden_for(holder[0]))
        return "looked"

    turns: list[dict[str, Any]] = [{"tool_calls": [{"name": "look", "input": {}}]}, {"text": "done"}]
    agents = [AgentDefinition("look", "Looks at the queue.", look, input_schema={"type": "object"})]
    runtime = LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel(turns),
        settings=FAST,
        agents=agents,
        start=False,
        deployment=Deployment(sandbox=pool, queue="sqlite", queue_visibility_seconds=300),
    )
    holder.append(runtime)
    try:
        runtime.start()
        result = runtime.run(event(), timeout=60)
    finally:
        runtime.close()
    assert result.ok and len(seen) == 1 and 240 < seen[0] <= 300  # it was 60 s whatever was asked


def test_a_visibility_that_is_not_positive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="queue_visibility_seconds must be positive"):
        LocalRuntime(
            tmp_path / "home",
            model=ScriptedModel([]),
            deployment=Deployment(queue="sqlite", queue_visibility_seconds=0),
        )


def test_worker_takes_a_visibility_and_dead_letters_a_message_for_an_unknown_task(tmp_path: Path) -> None:
    backends = local_backends(tmp_path)
    message = TaskMessage(orchestration_id="gone", task_id="t1", attempt=1, agent=AgentRef(name="x", version=1))
    backends.queue.send([message])
    result = CliRunner().invoke(
        app, ["worker", "--home", str(tmp_path), "--visibility", "300", "--max-messages", "1", "--json"]
    )
    dead = backends.queue.dead_letters()
    backends.close()
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["rejected"] == 1 and len(dead) == 1
    assert "message visibility: 300 s" in result.stderr
    assert CliRunner().invoke(app, ["worker", "--home", str(tmp_path), "--visibility", "0"]).exit_code == 2
