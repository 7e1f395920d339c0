"""Trusted (in-process) calls: cooperative cancellation, fenced late results, per-agent bounds, prompt close."""

from __future__ import annotations

import contextvars
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from blackboard import TaskState
from tests.wrapper.conftest import Harness
from tests.wrapper.test_sandbox import wait_until
from wrapper import TrustedCalls, sdk
from wrapper.executor import Executor
from wrapper.trusted_calls import Ended, standing_by

NOOP = "def handler(**kw):\n    return None\n"
WAIT = 30.0


def no_trusted_call_left() -> bool:
    return not any(thread.name.startswith("arbiter-trusted-") for thread in threading.enumerate())


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at the end of each test so that no hung call outlives it (they end before the next test starts)."""
    event = threading.Event()
    yield event
    event.set()
    assert wait_until(no_trusted_call_left, WAIT)


def test_a_timed_out_call_is_told_to_stop_and_its_late_result_and_notes_are_dropped(
    harness: Harness, release: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    seen: dict[str, Any] = {}
    finished = threading.Event()

    def slow() -> str:
        seen["deadline"] = sdk.context().deadline
        release.wait(WAIT)
        seen["cancelled"] = sdk.cancelled()
        try:
            sdk.note("late", "written after the attempt ended")
        except sdk.TaskCancelledError:
            seen["note_refused"] = True
        finished.set()
        return "late"

    executor = Executor(harness.backends, trusted={"slow": slow})
    (message,) = harness.wave((harness.register("slow", NOOP, isolation="in_process", timeout=0.3), {}))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="wrapper.trusted_calls"):
        completion = executor.execute(message)
        assert completion is not None and completion.status is TaskState.TIMED_OUT
        release.set()
        assert finished.wait(WAIT)
        assert wait_until(lambda: "its result and notes are dropped" in caplog.text, WAIT)
    executor.close()
    # The deadline the call saw is its own timeout from its start, not the task's (here: none).
    assert seen["deadline"] is not None and (seen["deadline"] - completion_time(harness, message)).total_seconds() < 1
    assert seen["cancelled"] and seen["note_refused"]
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.state is TaskState.TIMED_OUT and task.result is not None and task.result.output is None
    assert harness.backends.blackboard.get_note(message.orchestration_id, "late") is None
    assert time.monotonic() - started < WAIT


def completion_time(harness: Harness, message: Any) -> Any:
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.result is not None
    return task.result.finished_at


def test_a_cooperative_call_skips_its_side_effect_after_its_timeout(harness: Harness, release: threading.Event) -> None:
    effects: list[int] = []
    done = threading.Event()

    def pay(amount: int) -> int:
        release.wait(WAIT)
        if not sdk.cancelled():
            effects.append(amount)
        done.set()
        return amount

    executor = Executor(harness.backends, trusted={"pay": pay})
    (message,) = harness.wave((harness.register("pay", NOOP, isolation="in_process", timeout=0.2), {"amount": 5}))
    assert executor.execute(message).status is TaskState.TIMED_OUT  # type: ignore[union-attr]
    release.set()
    assert done.wait(WAIT)
    executor.close()
    assert effects == []


def test_hung_calls_of_one_agent_do_not_starve_another(harness: Harness, release: threading.Event) -> None:
    hung = 40  # more than any thread pool the executor had, whatever the number of cores
    executor = Executor(harness.backends, trusted={"hang": lambda i: release.wait(600), "healthy": lambda: "fine"})
    hang = harness.register("hang", NOOP, isolation="in_process", timeout=0.2)
    healthy = harness.register("healthy", NOOP, isolation="in_process", timeout=10.0)
    *messages, last = harness.wave(*[(hang, {"i": i}) for i in range(hung)], (healthy, {}))
    with ThreadPoolExecutor(max_workers=hung) as callers:
        completions = list(callers.map(executor.execute, messages))
    assert all(c is not None and c.status is TaskState.TIMED_OUT for c in completions)
    # Its own calls held its slots: those timeouts are the agent's own.
    assert all(c.error is not None and c.error.agent_fault for c in completions if c is not None)
    assert executor._calls.alive("hang") == 4  # the default bound per agent; the rest never started
    completion = executor.execute(last)
    executor.close()
    assert completion is not None and completion.status is TaskState.SUCCEEDED and completion.output == "fine"


def test_a_call_that_finds_the_pool_full_of_other_agents_is_not_the_agents_fault(
    harness: Harness, release: threading.Event
) -> None:
    trusted = {"a": lambda: release.wait(600), "b": lambda: release.wait(600), "c": lambda: "never run"}
    executor = Executor(harness.backends, trusted=trusted, trusted_calls=TrustedCalls(per_agent=1, max_calls=2))
    agents = [harness.register(name, NOOP, isolation="in_process", timeout=0.2) for name in "abc"]
    first, second, third = harness.wave(*[(agent, {}) for agent in agents])
    assert executor.execute(first).error.agent_fault  # type: ignore[union-attr]
    assert executor.execute(second).error.agent_fault  # type: ignore[union-attr]
    busy = executor.execute(third)
    executor.close()
    assert busy is not None and busy.status is TaskState.TIMED_OUT and busy.error is not None
    assert (busy.error.type, busy.error.agent_fault, busy.error.retryable) == ("TrustedCallsBusy", False, True)


def test_close_returns_at_once_and_leaves_the_running_attempt_to_the_watchdog(
    harness: Harness, release: threading.Event
) -> None:
    running = threading.Event()

    def hang() -> None:
        running.set()
        release.wait(600)

    executor = Executor(harness.backends, trusted={"hang": hang})
    (message,) = harness.wave((harness.register("hang", NOOP, isolation="in_process", timeout=600), {}))
    results: list[Any] = []
    caller = threading.Thread(target=lambda: results.append(executor.execute(message)), daemon=True)
    caller.start()
    assert running.wait(WAIT)
    executor.close()
    caller.join(WAIT)
    assert not caller.is_alive() and results == [None]  # no completion: as if the process had died
    assert harness.backends.blackboard.get_task(message.orchestration_id, message.task_id).state is TaskState.RUNNING
    assert harness.completions == []


def test_a_call_that_hangs_for_ever_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import threading
        from blackboard import local_backends
        from tests.wrapper.conftest import Harness
        from wrapper.executor import Executor

        harness = Harness(local_backends({str(tmp_path / "home")!r}))
        running = threading.Event()

        def hang():
            running.set()
            threading.Event().wait()  # for ever

        executor = Executor(harness.backends, trusted={{"hang": hang}})
        agent = harness.register("hang", "def handler():\\n    pass\\n", isolation="in_process", timeout=0.2)
        (message,) = harness.wave((agent, {{}}))
        print(executor.execute(message).status.value, flush=True)
        executor.close()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "timed_out"


def _run(calls: TrustedCalls, agent: str, fn: Any, timeout: float = WAIT) -> Any:
    return calls.run(agent, lambda cancel, limit: fn(), timeout=timeout)


def test_a_thread_whose_call_returned_takes_the_next_call_then_exits_when_idle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("wrapper.trusted_calls.IDLE_SECONDS", 0.3)
    calls = TrustedCalls()
    first = _run(calls, "a", threading.get_ident)
    second = _run(calls, "b", lambda: (threading.get_ident(), threading.current_thread().name))
    assert first.how == second.how == "returned"
    assert second.value == (first.value, "arbiter-trusted-b")  # the same thread, named for its call
    assert wait_until(no_trusted_call_left, WAIT)  # the idle thread exits on its own


def test_an_abandoned_call_keeps_its_thread_and_the_next_call_gets_another(release: threading.Event) -> None:
    calls = TrustedCalls()
    hung_on: list[int] = []

    def hang() -> None:
        hung_on.append(threading.get_ident())
        release.wait(WAIT)

    assert _run(calls, "slow", hang, timeout=0.2).how == "timed_out"
    after = _run(calls, "slow", threading.get_ident)
    assert after.how == "returned" and after.value != hung_on[0]
    assert calls.alive("slow") == 1  # the abandoned call still holds its slot
    calls.close()


def test_close_ends_the_idle_threads_at_once() -> None:
    calls = TrustedCalls()
    assert _run(calls, "a", lambda: 1).how == "returned"
    assert any(t.name == "arbiter-trusted-idle" for t in threading.enumerate()) or wait_until(
        lambda: any(t.name == "arbiter-trusted-idle" for t in threading.enumerate()), 5
    )
    calls.close()
    assert wait_until(no_trusted_call_left, 5)


def test_many_calls_from_many_threads_all_return_on_reused_threads() -> None:
    calls = TrustedCalls(per_agent=4, max_calls=8)
    results: list[Ended[Any]] = []
    lock = threading.Lock()

    def caller(n: int) -> None:
        for i in range(150):
            ended = _run(calls, f"agent{n % 3}", lambda i=i: i * 2)
            with lock:
                results.append(ended)

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert len(results) == 900 and all(r.how == "returned" for r in results)
    assert calls.alive() == 0
    calls.close()
    assert wait_until(no_trusted_call_left, WAIT)


# ---------------------------------------------------------------- calls on the caller's own thread


def test_a_call_here_runs_on_the_callers_thread_and_keeps_the_slots(release: threading.Event) -> None:
    calls = TrustedCalls(per_agent=1, max_calls=2)
    taken: list[Ended[Any]] = []
    ended = calls.run_here("a", lambda cancel, limit: threading.get_ident(), timeout=WAIT, take_over=taken.append)
    assert ended is not None and ended.how == "returned" and ended.value == threading.get_ident()
    assert taken == [] and calls.alive() == 0
    # While a call runs here, it holds its agent's slot: another call of the agent waits, then gets none.
    inside = threading.Event()

    def hold() -> None:
        calls.run_here(
            "a", lambda cancel, limit: inside.set() or release.wait(WAIT), timeout=WAIT, take_over=taken.append
        )

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert inside.wait(WAIT)
    assert _run(calls, "a", lambda: "never", timeout=0.2).how == "no_slot"
    release.set()
    holder.join(WAIT)
    assert calls.alive() == 0 and taken == []
    calls.close()


def test_a_call_here_is_given_up_at_its_limit_and_its_late_value_dropped(release: threading.Event) -> None:
    calls = TrustedCalls()
    taken: list[tuple[Ended[Any], bool, bool]] = []
    cancelled: list[threading.Event] = []

    def hang(cancel: threading.Event, limit: float) -> str:
        cancelled.append(cancel)
        release.wait(WAIT)
        return "late"

    def take_over(ended: Ended[Any]) -> None:
        # On a thread of its own, while the caller's thread is still inside the call.
        taken.append((ended, threading.current_thread() is not caller, cancelled[0].is_set()))

    results: list[Any] = []
    caller = threading.Thread(
        target=lambda: results.append(calls.run_here("slow", hang, timeout=0.2, take_over=take_over)), daemon=True
    )
    caller.start()
    assert wait_until(lambda: len(taken) == 1, WAIT)
    ended, elsewhere, was_cancelled = taken[0]
    assert (ended.how, elsewhere, was_cancelled) == ("timed_out", True, True)
    assert abs(ended.limit_seconds - 0.2) < 0.05
    assert caller.is_alive() and calls.alive("slow") == 1  # still inside the call, which holds its slot
    release.set()
    caller.join(WAIT)
    assert results == [None] and len(taken) == 1  # the late value is dropped; the call was taken over once
    assert calls.alive() == 0
    calls.close()


def _monitors() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "arbiter-calls-monitor"]


def test_the_monitor_of_calls_here_serves_call_after_call_then_exits_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    # Most calls return before the monitor first looks at them: one monitor per call was a thread start per task.
    monkeypatch.setattr("wrapper.trusted_calls.IDLE_SECONDS", 0.5)
    assert wait_until(lambda: not _monitors(), WAIT)
    calls = TrustedCalls()
    seen: set[threading.Thread] = set()
    for i in range(20):
        ended = calls.run_here("a", lambda cancel, limit, i=i: i, timeout=WAIT, take_over=lambda e: None)
        assert ended is not None and ended.value == i
        seen.update(_monitors())
    # Calls that keep coming, each returning before the monitor looks, keep the same monitor past IDLE_SECONDS.
    until = time.monotonic() + 1.2
    while time.monotonic() < until:
        calls.run_here("a", lambda cancel, limit: None, timeout=WAIT, take_over=lambda e: None)
        seen.update(_monitors())
        time.sleep(0.05)
    assert len(seen) == 1
    assert wait_until(lambda: not _monitors(), WAIT)  # idle for IDLE_SECONDS: it exits
    # A call after that starts a new one, which still gives calls up at their limits.
    taken: list[Ended[Any]] = []
    assert calls.run_here("b", lambda cancel, limit: time.sleep(0.4), timeout=0.1, take_over=taken.append) is None
    assert wait_until(lambda: [e.how for e in taken] == ["timed_out"], WAIT)
    calls.close()
    assert wait_until(lambda: not _monitors(), 5)  # at close, at once


def test_close_gives_up_the_calls_here_at_once(release: threading.Event) -> None:
    calls = TrustedCalls()
    taken: list[Ended[Any]] = []
    inside = threading.Event()
    caller = threading.Thread(
        target=lambda: calls.run_here(
            "slow", lambda cancel, limit: inside.set() or release.wait(WAIT), timeout=600, take_over=taken.append
        ),
        daemon=True,
    )
    caller.start()
    assert inside.wait(WAIT)
    calls.close()
    assert wait_until(lambda: [e.how for e in taken] == ["closed"], 5)
    after = calls.run_here("slow", lambda cancel, limit: 1, timeout=1, take_over=taken.append)
    assert after is not None and after.how == "closed"


def test_a_hung_trusted_call_on_the_workers_thread_is_reported_at_its_limit(
    harness: Harness, release: threading.Event
) -> None:
    inside = threading.Event()

    def hang() -> str:
        inside.set()
        release.wait(WAIT)
        try:
            sdk.note("late", "written after the attempt ended")
        except sdk.TaskCancelledError:
            return "refused"
        return "late"

    executor = Executor(harness.backends, trusted={"hang": hang})
    (message,) = harness.wave((harness.register("hang", NOOP, isolation="in_process", timeout=0.3), {}))
    replaced: list[str] = []
    results: list[Any] = []

    def work() -> None:
        with standing_by(lambda: replaced.append(threading.current_thread().name)):
            results.append(executor.execute(message))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    assert inside.wait(WAIT)
    # At its limit, from another thread: the attempt is written and reported, and the worker is replaced.
    assert wait_until(lambda: len(harness.completions) == 1 and len(replaced) == 1, WAIT)
    assert worker.is_alive()  # still inside the call
    (completion,) = harness.completions
    assert completion.status is TaskState.TIMED_OUT and completion.error is not None
    assert completion.error.type == "Timeout"
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.state is TaskState.TIMED_OUT
    release.set()
    worker.join(WAIT)
    assert results == [None] and len(harness.completions) == 1  # one completion for the attempt, not two
    assert harness.backends.blackboard.get_note(message.orchestration_id, "late") is None
    executor.close()


LEAKY: contextvars.ContextVar[str] = contextvars.ContextVar("leaky", default="unset")


def test_what_a_call_on_the_workers_thread_sets_in_its_context_does_not_reach_the_next(harness: Harness) -> None:
    seen: list[str] = []

    def leak(mark: str) -> None:
        seen.append(LEAKY.get())
        LEAKY.set(mark)  # never reset

    executor = Executor(harness.backends, trusted={"leak": leak})
    agent = harness.register("leak", NOOP, isolation="in_process")
    first, second = harness.wave((agent, {"mark": "first"}), (agent, {"mark": "second"}))
    with standing_by(lambda: None):
        for message in (first, second):
            completion = executor.execute(message)
            assert completion is not None and completion.status is TaskState.SUCCEEDED
    executor.close()
    assert seen == ["unset", "unset"] and LEAKY.get() == "unset"
