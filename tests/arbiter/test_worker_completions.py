"""A wave closed by an ``arbiter worker`` process is continued by the runtime at once, not by its watchdog."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from arbiter import AgentDefinition, EngineSettings, LocalRuntime
from arbiter._completions import COMPLETIONS_QUEUE, relay_completions, serve_completions
from arbiter.config import Deployment
from blackboard import CompletionEvent, Event, TaskState, local_backends
from blackboard.adapters import SqliteTaskQueue
from blackboard.messages import COMPLETION_DETAIL_TYPE, COMPLETION_SOURCE
from wrapper import SandboxPool
from wrapper.testing import ScriptedModel

ROOT = Path(__file__).resolve().parents[2]
WORKER = "import sys; from arbiter.cli import main; sys.argv[0] = 'arbiter'; main()"
SLOW_MODULE = "import time\n\n\ndef handler():\n    time.sleep(1.0)\n    return 'from the worker'\n"


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def test_a_wave_closed_by_a_worker_process_continues_at_once(
    tmp_path: Path, worker_process: list[subprocess.Popen[bytes]]
) -> None:
    home = tmp_path / "home"
    module = tmp_path / "slow.py"
    module.write_text(SLOW_MODULE)
    entered = threading.Event()
    runtime: LocalRuntime

    def local() -> str:
        # Holds the runtime's only worker thread until the worker process runs the other task: that one ends last.
        entered.set()
        board = runtime.backends.blackboard
        end = time.monotonic() + 240
        while time.monotonic() < end:
            tasks = board.list_tasks(board.list_orchestrations()[0].id)
            if any(t.task_id == "remote" and t.state is not TaskState.PENDING and t.holder for t in tasks):
                return "from the runtime"
            time.sleep(0.02)
        raise TimeoutError("the worker process never took its task")

    turns = [
        {
            "tool_calls": [
                {"name": "local", "input": {}, "id": "local"},
                {"name": "slow", "input": {}, "id": "remote"},
            ]
        },
        {"text": "both done"},
    ]
    with SandboxPool(size=1, preload=()) as pool:
        runtime = LocalRuntime(
            home,
            model=ScriptedModel(turns),
            settings=EngineSettings(stalled_after_seconds=600),
            agents=[AgentDefinition("local", "Runs here.", local)],
            deployment=Deployment(workers=1, queue="sqlite", sandbox=pool),
        )
        try:
            runtime.register_agent("slow", "Runs in the worker.", module)
            orchestration_id = runtime.submit({"source": "test", "detail-type": "go", "detail": {}})
            assert entered.wait(30)
            worker_process.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, "worker", "--home", str(home), "--concurrency", "1"],
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            result = runtime.wait(orchestration_id, timeout=300)
        finally:
            runtime.close()
    assert result.status == "completed" and result.output == "both done"
    tasks = {t.task_id: t for t in local_backends(home).blackboard.list_tasks(orchestration_id)}
    assert tasks["remote"].result is not None and tasks["remote"].result.output == "from the worker"


def test_relayed_completions_are_durable_and_only_those_that_need_a_coordinator(tmp_path: Path) -> None:
    backends = local_backends(tmp_path / "home")
    assert backends.database is not None
    queue = SqliteTaskQueue(backends.database, COMPLETIONS_QUEUE)
    relay_completions(backends.bus, queue)

    def completion(task_id: str, *, closes_wave: bool, recorded: bool) -> Event:
        detail = CompletionEvent(
            orchestration_id="o",
            task_id=task_id,
            attempt=1,
            agent={"name": "a", "version": 1},
            status=TaskState.SUCCEEDED,
            closes_wave=closes_wave,
            recorded=recorded,
        ).to_event()
        return detail

    backends.bus.publish(
        [
            completion("closing", closes_wave=True, recorded=True),
            completion("ordinary", closes_wave=False, recorded=True),
            completion("unrecorded", closes_wave=False, recorded=False),
        ]
    )
    queue.send_raw(["not an event"])
    handled: list[str] = []
    stop = threading.Event()

    def handle(event: Event) -> None:
        assert event.source == COMPLETION_SOURCE and event.detail_type == COMPLETION_DETAIL_TYPE
        handled.append(CompletionEvent.parse(event.detail).task_id)
        if len(handled) == 2:
            stop.set()

    serve_completions(queue, handle, stop, wait_seconds=0.05)
    backends.close()
    assert handled == ["closing", "unrecorded"]
