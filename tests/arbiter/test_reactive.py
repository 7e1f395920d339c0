"""Reactive tasks end to end: notes that fire triggers, duplicates, racing writers, depth, cycles, budgets, a crash."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from arbiter import Deployment, EngineSettings, LocalRuntime, Sweeper
from arbiter.engine import build_coordinator
from arbiter.reflection import ReflectionPolicy
from arbiter.report import build_report, render_html, render_text
from arbiter.testing import ScriptedModel
from blackboard import (
    AgentManifest,
    AgentState,
    Budget,
    CompletionEvent,
    Event,
    OrchestrationStatus,
    TaskMessage,
    TaskState,
    Trigger,
    memory_backends,
)
from blackboard.reactions import react
from tests.arbiter.conftest import RuntimeFactory, event
from tests.arbiter.test_scenarios import call, tool_results
from tests.arbiter.test_tracing import _ancestors, _parent, spans  # noqa: F401 (a fixture)
from wrapper import Executor, SandboxPool, sdk


def on_prefix(prefix: str, **paths: str) -> list[dict[str, Any]]:
    return [{"pattern": {"note": {"key": [{"prefix": prefix}]}}, "input": paths}]


def alarm(host: str) -> str:
    sdk.note(f"alarm:{host}", {"host": host, "level": 3})
    return "raised"


def enrich(host: str, key: str) -> dict[str, str]:
    return {"host": host, "owner": "team-a", "from": key}


ENRICH = on_prefix("alarm:", host="$.note.value.host", key="$.note.key")


def test_a_note_fires_a_reactive_task_whose_result_the_planner_sees(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("alarm", host="db1")]}, {"text": "done"}])
    rt.register_agent("alarm", "Raises an alarm.", alarm)
    rt.register_agent(
        "enrich", "Adds the owner.", enrich, triggers=on_prefix("alarm:", host="$.note.value.host", key="$.note.key")
    )
    result = rt.run(event(), timeout=60)
    assert result.ok and (result.waves, result.tasks) == (1, 2)
    view = rt.orchestration(result.orchestration_id)
    planned, reactive = view.tasks
    assert not planned.reactive and reactive.reactive and reactive.wave == planned.wave == 1
    assert reactive.state is TaskState.SUCCEEDED and reactive.input == {"host": "db1", "key": "alarm:db1"}
    assert reactive.reaction is not None and reactive.reaction.cause_task_id == planned.task_id
    assert (reactive.reaction.depth, reactive.reaction.chain) == (1, ["alarm", "enrich"])
    # The planner answers only its own tool use; the reaction's output reaches it as a note, in the same turn.
    assert [r["toolUseId"] for r in tool_results(rt, result.orchestration_id, 1)] == [planned.task_id]
    answer = view.orchestration.conversation[-2]
    assert (
        '"enrich@alarm:db1": {"host": "db1", "owner": "team-a", "from": "alarm:db1"}' in answer["content"][-1]["text"]
    )
    assert rt.backends.registry.active("enrich").stats.succeeded == 1
    assert result.tasks == view.orchestration.usage.tasks


def test_duplicate_writes_of_one_note_version_fire_once(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("alarm", host="db1")]}, {"text": "done"}])
    rt.register_agent("alarm", "Raises an alarm.", alarm)
    rt.register_agent("enrich", "Adds the owner.", enrich, triggers=ENRICH)
    result = rt.run(event(), timeout=60)
    board = rt.backends.blackboard
    cause = board.list_tasks(result.orchestration_id)[0]
    note = board.get_note(result.orchestration_id, "alarm:db1")
    assert note is not None
    again = react(board, rt.backends.registry, cause, [note])  # the same note version, reported once more
    assert [r.refused for r in again] == ["duplicate"]
    assert len(board.list_tasks(result.orchestration_id)) == 2


def test_racing_writers_of_one_note_fire_once_per_version_written(runtime: RuntimeFactory) -> None:
    both = threading.Barrier(2)

    def writer(who: str) -> str:
        both.wait(timeout=30)
        sdk.note("alarm:db1", {"host": "db1", "by": who})
        return who

    rt = runtime([{"tool_calls": [call("writer", who="a"), call("writer", who="b")]}, {"text": "done"}])
    rt.register_agent("writer", "Writes the alarm.", writer)
    rt.register_agent("enrich", "Adds the owner.", enrich, triggers=ENRICH)
    result = rt.run(event(), timeout=60)
    assert result.ok
    note = rt.backends.blackboard.get_note(result.orchestration_id, "alarm:db1")
    assert note is not None
    reactive = [t for t in rt.orchestration(result.orchestration_id).tasks if t.reactive]
    assert sorted(t.reaction.note_version for t in reactive if t.reaction) == list(range(1, note.version + 1))
    assert all(t.state is TaskState.SUCCEEDED for t in reactive)


def relay(step: int) -> str:
    sdk.note(f"s{step + 1}", step + 1)
    return f"step {step}"


def chain_runtime(runtime: RuntimeFactory, budget: Budget | None = None) -> Any:
    rt = runtime([{"tool_calls": [call("a0", step=0)]}, {"text": "done"}], budget=budget)
    rt.register_agent("a0", "Starts the chain.", relay)
    for n in (1, 2, 3):
        rt.register_agent(f"a{n}", f"Relay {n}.", relay, triggers=on_prefix(f"s{n}", step="$.note.value"))
    return rt


def test_a_chain_of_reactions_stops_at_the_depth_limit(runtime: RuntimeFactory) -> None:
    rt = chain_runtime(runtime, Budget(max_trigger_depth=2))
    result = rt.run(event(), timeout=60)
    assert result.ok
    ran = [
        (t.agent.name, t.reaction.depth if t.reaction else 0) for t in rt.orchestration(result.orchestration_id).tasks
    ]
    assert ran == [("a0", 0), ("a1", 1), ("a2", 2)]


def test_the_default_depth_limit_is_three(runtime: RuntimeFactory) -> None:
    rt = chain_runtime(runtime)
    result = rt.run(event(), timeout=60)
    assert [t.agent.name for t in rt.orchestration(result.orchestration_id).tasks] == ["a0", "a1", "a2", "a3"]


def test_a_cycle_of_triggers_is_refused(runtime: RuntimeFactory) -> None:
    def ping(n: int) -> int:
        sdk.note("ping", n + 1)
        return n

    def pong(n: int) -> int:
        sdk.note("pong", n + 1)
        return n

    rt = runtime([{"tool_calls": [call("ping", n=0)]}, {"text": "done"}])
    rt.register_agent("ping", "Pings.", ping, triggers=on_prefix("pong", n="$.note.value"))
    rt.register_agent("pong", "Pongs.", pong, triggers=on_prefix("ping", n="$.note.value"))
    result = rt.run(event(), timeout=60)
    assert result.ok
    assert [t.agent.name for t in rt.orchestration(result.orchestration_id).tasks] == ["ping", "pong"]


def test_a_trigger_storm_ends_the_orchestration_with_the_budget_named(runtime: RuntimeFactory) -> None:
    rt = runtime([{"tool_calls": [call("alarm", host="db1")]}, {"text": "never reached"}], budget=Budget(max_tasks=2))
    rt.register_agent("alarm", "Raises an alarm.", alarm)
    for name in ("audit", "enrich", "page"):
        rt.register_agent(name, f"{name} it.", enrich, triggers=ENRICH)
    result = rt.run(event(), timeout=60)
    assert result.status == "failed" and result.error == "budget exhausted: max_tasks"
    tasks = rt.orchestration(result.orchestration_id).tasks
    assert len(tasks) == 2 and all(t.done for t in tasks)


def test_a_crash_between_the_note_and_the_dispatch_is_resumed() -> None:
    backends = memory_backends()
    code = backends.code_store.put(b"# trusted callables, registered in process\n")
    for name, schema, triggers in (
        ("alarm", {"type": "object", "properties": {"host": {"type": "string"}}}, []),
        (
            "enrich",
            {"type": "object", "properties": {"host": {}, "key": {}}},
            on_prefix("alarm:", host="$.note.value.host", key="$.note.key"),
        ),
    ):
        backends.registry.put(
            AgentManifest(
                name=name,
                version=1,
                description=name,
                input_schema=schema,
                code=code,
                isolation="in_process",
                state=AgentState.ACTIVE,
                triggers=[Trigger.parse(t) for t in triggers],
            )
        )
    coordinator = build_coordinator(
        backends, ScriptedModel([{"tool_calls": [call("alarm", host="db1")]}, {"text": "ok"}])
    )
    executor = Executor(backends, trusted={"alarm": alarm, "enrich": enrich})
    try:
        started = coordinator.start(Event.parse(event()))

        def run_next() -> CompletionEvent:
            (received,) = backends.queue.receive(1)
            backends.queue.ack(received.receipt)
            message = received.message
            assert isinstance(message, TaskMessage)
            completion = executor.execute(message)
            assert completion is not None
            return completion

        lost = run_next()  # the process dies here: its completion never reaches the coordinator
        assert lost.reactions and not lost.closes_wave
        (pending,) = [t for t in backends.blackboard.list_tasks(started.id) if t.reactive]
        assert pending.state is TaskState.PENDING and backends.queue.receive(1) == []

        report = Sweeper(coordinator).sweep(resume=True)  # the restart
        assert report.tasks_redispatched == 1
        finished = run_next()
        assert finished.task_id == pending.task_id and finished.closes_wave
        assert coordinator.on_completion(finished)
        done = backends.blackboard.get_orchestration(started.id)
        assert done.status is OrchestrationStatus.COMPLETED and done.output == "ok"
    finally:
        executor.close()
        backends.close()


def enrich_run(runtime: RuntimeFactory) -> tuple[Any, str]:
    rt = runtime([{"tool_calls": [call("alarm", host="db1")]}, {"text": "done"}])
    rt.register_agent("alarm", "Raises an alarm.", alarm)
    rt.register_agent("enrich", "Adds the owner.", enrich, triggers=ENRICH)
    result = rt.run(event(), timeout=60)
    assert result.ok
    return rt, result.orchestration_id


def test_the_report_draws_reactive_tasks_as_such(runtime: RuntimeFactory) -> None:
    rt, orchestration_id = enrich_run(runtime)
    view = rt.orchestration(orchestration_id)
    report = build_report(view.orchestration, view.tasks)
    planned, reactive = report["rows"]
    assert planned["reaction"] is None and report["reactive_tasks"] == 1
    assert reactive["reaction"] == {
        "note_key": "alarm:db1",
        "note_version": 1,
        "depth": 1,
        "cause_task_id": planned["task_id"],
    }
    assert f"reacts to note 'alarm:db1' v1 (depth 1, from {planned['task_id']})" in render_text(report)
    page = render_html(report)
    (bar,) = re.findall(r'<rect class="bar"[^>]*data-reactive="true"[^>]*>', page)
    assert f'data-task-id="{reactive["task_id"]}"' in bar
    assert "↳ enrich@1" in page and "<span>reactive 1</span>" in page


def test_a_reactive_task_is_traced_with_a_link_to_its_trigger(
    runtime: RuntimeFactory,
    spans: InMemorySpanExporter,  # noqa: F811 (the fixture imported above)
) -> None:
    rt, orchestration_id = enrich_run(runtime)
    rt.close()  # every span has ended
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (react_span,) = [s for s in finished if s.name == "arbiter.react"]
    (link,) = react_span.links
    write = by_id[link.context.span_id]  # the span of the note write that fired the trigger
    planned, reactive = rt.orchestration(orchestration_id).tasks
    assert write.name == "wrapper.react"
    assert _parent(write, by_id).attributes["arbiter.task_id"] == planned.task_id  # type: ignore[union-attr]
    reactive_id = reactive.task_id
    (execution,) = [
        s for s in finished if s.name == "wrapper.execute" and s.attributes["arbiter.task_id"] == reactive_id
    ]
    assert _ancestors(execution, by_id)[:2] == ["arbiter.dispatch", "arbiter.react"]
    assert {s.context.trace_id for s in finished} == {write.context.trace_id}


def test_a_failing_reactive_agent_is_counted_reported_and_quarantined(tmp_path: Path, pool: SandboxPool) -> None:
    def broken(host: str, key: str) -> str:
        raise sdk.NonRetryableError(f"no owner for {host}")

    settings = EngineSettings(reflection=ReflectionPolicy(min_invocations=1, max_failure_rate=0.5, refabricate="off"))
    turns = [{"tool_calls": [call("alarm", host="db1")]}, {"text": "done"}]
    with LocalRuntime(
        tmp_path / "home", model=ScriptedModel(turns), settings=settings, deployment=Deployment(sandbox=pool)
    ) as rt:
        rt.register_agent("alarm", "Raises an alarm.", alarm)
        rt.register_agent("enrich", "Adds the owner.", broken, triggers=ENRICH)
        result = rt.run(event(), timeout=60)
        assert result.ok
        (version,) = rt.backends.registry.versions("enrich")
        answer = rt.orchestration(result.orchestration_id).orchestration.conversation[-2]
    assert version.stats.failed == 1 and version.state is AgentState.QUARANTINED
    texts = [block["text"] for block in answer["content"] if "text" in block]
    assert any(
        "`enrich` (triggered by note 'alarm:db1') failed: NonRetryableError: no owner for db1" in t for t in texts
    )


def test_an_agent_registered_between_runs_reacts_in_the_next_one(runtime: RuntimeFactory) -> None:
    turn = [{"tool_calls": [call("alarm", host="db1")]}, {"text": "done"}]
    rt = runtime(turn + turn)
    rt.register_agent("alarm", "Raises an alarm.", alarm)
    rt.register_agent("enrich", "Adds the owner.", enrich, triggers=ENRICH)
    first = rt.run(event(n=1), timeout=60)
    rt.register_agent("audit", "Audits alarms.", enrich, triggers=ENRICH)
    second = rt.run(event(n=2), timeout=60)
    agents = [[t.agent.name for t in rt.orchestration(r.orchestration_id).tasks] for r in (first, second)]
    assert agents == [["alarm", "enrich"], ["alarm", "audit", "enrich"]]
