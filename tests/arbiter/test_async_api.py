"""The async API, the update stream, and the sync API inside a running event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from arbiter import LocalRuntime, RunResult
from arbiter.config import Deployment
from arbiter.updates import NoteWritten, OrchestrationFinished, TaskFinished, TaskRetried, Update, WavePlanned
from blackboard import ReservedSourceError
from tests.arbiter.conftest import FAST, RuntimeFactory, event
from tests.arbiter.test_slow_planner import SlowModel
from wrapper import SandboxPool

ECHO_THEN_ANSWER: list[dict[str, Any]] = [
    {"tool_calls": [{"name": "echo", "input": {"v": 7}}]},
    {"text": "echoed 7"},
]


def test_the_sync_run_works_inside_a_running_event_loop(runtime: RuntimeFactory) -> None:
    rt = runtime(ECHO_THEN_ANSWER)
    rt.register_agent("echo", "Echoes.", lambda v: v)

    async def handler() -> Any:  # a notebook cell or an async web handler calling the sync API
        return rt.run(event(), timeout=60)

    result = asyncio.run(handler())
    assert result.ok and result.output == "echoed 7", result.error


def _flaky_then_noting() -> Any:
    calls = {"n": 0}

    def flaky(v: int) -> int:
        """Fails once, then echoes and notes."""
        from wrapper import sdk

        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first attempt fails")
        sdk.note("seen", v)
        return v

    return flaky


def test_stream_yields_typed_updates_in_order(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [{"name": "flaky", "input": {"v": 7}}]}, {"text": "done"}])
    rt.register_agent("flaky", "Fails once.", _flaky_then_noting())
    stream = rt.stream(event(), timeout=60)
    assert stream.orchestration_id is not None
    updates = list(stream)
    kinds = [type(u).__name__ for u in updates]
    assert kinds == [
        "WavePlanned",
        "TaskStarted",
        "TaskFinished",
        "TaskRetried",
        "TaskStarted",
        "NoteWritten",
        "TaskFinished",
        "OrchestrationFinished",
    ], kinds
    planned, _, failed, retried, _, note, finished, end = updates
    assert isinstance(planned, WavePlanned) and planned.wave == 1 and planned.tasks[0].agent == "flaky@1"
    assert planned.tasks[0].input == {"v": 7}
    assert isinstance(failed, TaskFinished) and failed.status == "failed" and failed.retry
    assert failed.error is not None and "first attempt fails" in failed.error
    assert isinstance(retried, TaskRetried) and retried.attempt == 2
    assert isinstance(note, NoteWritten) and (note.key, note.value, note.author) == ("seen", 7, "flaky@1")
    assert isinstance(finished, TaskFinished) and (finished.status, finished.output, finished.retry) == (
        "succeeded",
        7,
        False,
    )
    assert isinstance(end, OrchestrationFinished) and end.result.ok and end.result.output == "done"
    assert {u.orchestration_id for u in updates} == {stream.orchestration_id}
    assert list(stream) == []  # ended


def test_async_for_over_the_stream(runtime: RuntimeFactory) -> None:
    rt = runtime(ECHO_THEN_ANSWER)
    rt.register_agent("echo", "Echoes.", lambda v: v)

    async def follow() -> list[Update]:
        return [update async for update in rt.stream(event(), timeout=60)]

    updates = asyncio.run(follow())
    assert [type(u).__name__ for u in updates] == [
        "WavePlanned",
        "TaskStarted",
        "TaskFinished",
        "OrchestrationFinished",
    ]


def test_arun_and_asubmit_leave_the_loop_free(runtime: RuntimeFactory) -> None:
    rt = runtime([*ECHO_THEN_ANSWER, {"text": "second"}])
    rt.register_agent("echo", "Echoes.", lambda v: v)
    ticks: list[int] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(1)
            await asyncio.sleep(0.001)

    async def main() -> tuple[RunResult, str]:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        result = await rt.arun(event(), timeout=60)
        orchestration_id = await rt.asubmit(event(n=2))
        stop.set()
        await ticking
        return result, orchestration_id

    result, orchestration_id = asyncio.run(main())
    assert result.ok and result.output == "echoed 7" and len(ticks) > 1
    assert rt.wait(orchestration_id, timeout=60).output == "second"


def test_submit_returns_before_the_planner_answers(tmp_path: Path, pool: SandboxPool) -> None:
    model = SlowModel([{"text": "done"}])
    with LocalRuntime(tmp_path / "home", model=model, settings=FAST, deployment=Deployment(sandbox=pool)) as rt:
        orchestration_id = rt.submit(event())
        assert model.entered.wait(10)  # the model is called on a planner thread while submit has returned
        view = rt.orchestration(orchestration_id)
        assert view.orchestration.status.value == "running" and view.orchestration.wave == 0
        model.release.set()
        assert rt.wait(orchestration_id, timeout=30).output == "done"


def test_a_stream_of_a_finished_orchestration_ends_at_once(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "hello"}])
    first = rt.run({**event(), "id": "evt-7"}, timeout=30)
    (end,) = list(rt.stream({**event(), "id": "evt-7"}, timeout=30))
    assert isinstance(end, OrchestrationFinished) and end.result == first


def test_a_stream_that_times_out_raises_and_the_orchestration_goes_on(tmp_path: Path, pool: SandboxPool) -> None:
    model = SlowModel([{"text": "done"}])
    with LocalRuntime(tmp_path / "home", model=model, settings=FAST, deployment=Deployment(sandbox=pool)) as rt:
        stream = rt.stream(event(), timeout=0.2)
        with pytest.raises(TimeoutError, match=r"still running after 0\.2s"):
            next(iter(stream))
        model.release.set()
        assert stream.orchestration_id is not None
        assert rt.wait(stream.orchestration_id, timeout=30).output == "done"


def test_a_refused_event_raises_at_the_call_and_leaves_no_observer(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "unused"}])
    with pytest.raises(ReservedSourceError):
        rt.stream({**event(), "source": "arbiter"})
    assert not rt.backends.blackboard._observers
