"""Bus triggers end to end: a bus event starts a standing orchestration that runs the triggered agents.

Once per event (redeliveries and racing deliveries), persisted before dispatch, within the budget, resumed after a
crash, with no planner turn; its result is recorded.
"""

from __future__ import annotations

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
    Event,
    Orchestration,
    OrchestrationStatus,
    TaskMessage,
    TaskState,
    Trigger,
    memory_backends,
    tracing,
)
from blackboard.standing import standing_event, standing_key
from tests.arbiter.conftest import RuntimeFactory
from tests.arbiter.test_cli import invoke
from tests.arbiter.test_tracing import _ancestors, spans  # noqa: F401 (a fixture)
from wrapper import Executor, SandboxPool, sdk

ORDERS = [{"pattern": {"source": ["shop.orders"]}, "input": {"order": "$.detail.order", "event": "$.id"}}]
SCHEMA = {
    "type": "object",
    "properties": {"order": {"type": "integer"}, "event": {"type": "string"}},
    "required": ["order"],
}


def pack(order: int, event: str) -> dict[str, Any]:
    sdk.note(f"packed:{order}", {"order": order})
    return {"packed": order, "event": event}


def invoice(order: int, event: str) -> dict[str, Any]:
    return {"invoiced": order}


def order_event(order: int = 7, event_id: str = "evt-1") -> Event:
    return Event.parse(
        {"id": event_id, "source": "shop.orders", "detail-type": "Order Placed", "detail": {"order": order}}
    )


def standing_of(rt: Any, published: Event) -> Orchestration:
    found = rt.backends.blackboard.find_orchestration(standing_event(published, standing_key(published)).id)
    assert found is not None, "no standing orchestration"
    return found  # type: ignore[no-any-return]


def test_a_bus_event_runs_the_triggered_agent_without_a_planner_turn(runtime: RuntimeFactory) -> None:
    rt = runtime([])  # a planner call would find no scripted turn and fail the orchestration
    rt.register_agent("pack", "Packs an order.", pack, input_schema=SCHEMA, triggers=ORDERS)
    rt.register_agent("idle", "Never triggered.", invoice, input_schema=SCHEMA)
    published = order_event()
    rt.backends.bus.publish([published])
    result = rt.wait(standing_of(rt, published).id, timeout=60)
    assert result.ok, result.error
    view = rt.orchestration(result.orchestration_id)
    assert view.orchestration.standing and view.orchestration.triggered_by == "evt-1"
    assert view.orchestration.event.detail == {"order": 7}
    (task,) = view.tasks
    assert (task.agent.name, task.wave, task.input, task.state) == (
        "pack",
        1,
        {"order": 7, "event": "evt-1"},
        TaskState.SUCCEEDED,
    )
    assert view.orchestration.output == {"pack@1": {"packed": 7, "event": "evt-1"}}
    assert (view.orchestration.usage.waves, view.orchestration.usage.tasks) == (1, 1)
    assert [n.key for n in view.notes] == ["packed:7"]
    assert rt.backends.registry.active("pack").stats.succeeded == 1
    assert [o.id for o in rt.backends.blackboard.list_orchestrations()] == [result.orchestration_id]


def test_the_same_event_delivered_twice_or_at_once_starts_one_orchestration(runtime: RuntimeFactory) -> None:
    rt = runtime([])
    rt.register_agent("pack", "Packs an order.", pack, input_schema=SCHEMA, triggers=ORDERS)
    published = order_event()
    threads = [threading.Thread(target=rt.backends.bus.publish, args=([published],)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rt.backends.bus.publish([published])
    result = rt.wait(standing_of(rt, published).id, timeout=60)
    assert result.ok
    assert len(rt.backends.blackboard.list_orchestrations()) == 1
    assert len(rt.orchestration(result.orchestration_id).tasks) == 1
    assert rt.backends.registry.active("pack").stats.invocations == 1


def test_every_agent_that_fires_gets_a_task_and_a_failure_is_named(runtime: RuntimeFactory) -> None:
    def broken(order: int, event: str) -> None:
        raise sdk.NonRetryableError(f"no stock for {order}")

    rt = runtime([])
    rt.register_agent("pack", "Packs an order.", pack, input_schema=SCHEMA, triggers=ORDERS)
    rt.register_agent("stock", "Reserves stock.", broken, input_schema=SCHEMA, triggers=ORDERS)
    published = order_event()
    rt.backends.bus.publish([published])
    result = rt.wait(standing_of(rt, published).id, timeout=60)
    assert result.status == "failed"
    assert result.error == "stock@1 failed: NonRetryableError: no stock for 7"
    done = rt.orchestration(result.orchestration_id).orchestration
    assert done.output == {"pack@1": {"packed": 7, "event": "evt-1"}}


def test_more_agents_than_the_budget_allows_end_it_with_the_budget_named(runtime: RuntimeFactory) -> None:
    rt = runtime([], budget=Budget(max_tasks=1))
    rt.register_agent("pack", "Packs an order.", pack, input_schema=SCHEMA, triggers=ORDERS)
    rt.register_agent("invoice", "Invoices an order.", invoice, input_schema=SCHEMA, triggers=ORDERS)
    published = order_event()
    rt.backends.bus.publish([published])
    result = rt.wait(standing_of(rt, published).id, timeout=60)
    assert (result.status, result.error) == ("failed", "budget exhausted: max_tasks")
    assert rt.orchestration(result.orchestration_id).tasks == []


def test_an_event_that_fires_nothing_starts_nothing_and_submit_fires_too(runtime: RuntimeFactory) -> None:
    rt = runtime([{"text": "seen"}])
    rt.register_agent("pack", "Packs an order.", pack, input_schema=SCHEMA, triggers=ORDERS)
    rt.backends.bus.publish([Event.parse({"source": "shop.returns", "detail-type": "Return", "detail": {"order": 1}})])
    assert rt.backends.blackboard.list_orchestrations() == []
    planned = rt.submit(order_event(event_id="evt-9").to_dict())  # ingress: a planned orchestration, and the trigger
    assert rt.wait(planned, timeout=60).output == "seen"
    result = rt.wait(standing_of(rt, order_event(event_id="evt-9")).id, timeout=60)
    assert result.ok and result.orchestration_id != planned


def test_a_crash_before_the_wave_or_before_the_dispatch_is_resumed_by_the_watchdog() -> None:
    backends = memory_backends()
    code = backends.code_store.put(b"# trusted callables, registered in process\n")
    backends.registry.put(
        AgentManifest(
            name="pack",
            version=1,
            description="Packs an order.",
            input_schema=SCHEMA,
            code=code,
            isolation="in_process",
            state=AgentState.ACTIVE,
            triggers=[Trigger.parse(t) for t in ORDERS],
        )
    )
    coordinator = build_coordinator(backends, ScriptedModel([]))
    executor = Executor(backends, trusted={"pack": pack})
    try:
        # The process that received the event stored the orchestration and died before its wave.
        published = order_event()
        created = coordinator.create(standing_event(published, "evt-1"), triggered_by="evt-1").record
        Sweeper(coordinator).sweep(resume=True)
        (task,) = backends.blackboard.list_tasks(created.id)
        assert task.state is TaskState.DISPATCHED and task.input == {"order": 7, "event": "evt-1"}
        (received,) = backends.queue.receive(1)
        backends.queue.ack(received.receipt)
        assert isinstance(received.message, TaskMessage)
        completion = executor.execute(received.message)
        assert completion is not None and completion.closes_wave
        assert coordinator.on_completion(completion)
        done = backends.blackboard.get_orchestration(created.id)
        assert done.status is OrchestrationStatus.COMPLETED and done.output == {
            "pack@1": {"packed": 7, "event": "evt-1"}
        }
        assert coordinator.trigger(published) is not None  # a redelivery afterwards: the same, finished orchestration
        assert (
            len(backends.blackboard.list_orchestrations()) == 1 and len(backends.blackboard.list_tasks(created.id)) == 1
        )
    finally:
        executor.close()
        backends.close()


def test_a_standing_orchestration_is_its_own_trace_linked_to_the_publication(
    runtime: RuntimeFactory,
    spans: InMemorySpanExporter,  # noqa: F811 (the fixture imported above)
) -> None:
    rt = runtime([])
    rt.register_agent("pack", "Packs an order.", pack, input_schema=SCHEMA, triggers=ORDERS)
    with tracing.start_span("shop.publish") as publishing:
        traceparent = tracing.current_traceparent()
        published = Event.parse(
            {
                "id": "evt-1",
                "source": "shop.orders",
                "detail-type": "Order",
                "detail": {"order": 7, "traceparent": traceparent},
            }
        )
        rt.backends.bus.publish([published])
    assert rt.wait(standing_of(rt, published).id, timeout=60).ok
    rt.close()  # every span has ended
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (root,) = [s for s in finished if s.name == "arbiter.orchestration"]
    assert root.parent is None and root.attributes["arbiter.triggered_by"] == "evt-1"
    (link,) = root.links
    assert link.context.span_id == publishing.get_span_context().span_id
    assert root.context.trace_id != publishing.get_span_context().trace_id
    (execution,) = [s for s in finished if s.name == "wrapper.execute"]
    assert execution.context.trace_id == root.context.trace_id
    assert "arbiter.dispatch" in _ancestors(execution, by_id)


def test_reflection_and_the_report_cover_standing_orchestrations(tmp_path: Path, pool: SandboxPool) -> None:
    def broken(order: int, event: str) -> None:
        raise sdk.NonRetryableError(f"no stock for {order}")

    settings = EngineSettings(reflection=ReflectionPolicy(min_invocations=1, max_failure_rate=0.5, refabricate="off"))
    with LocalRuntime(
        tmp_path / "home", model=ScriptedModel([]), settings=settings, deployment=Deployment(sandbox=pool)
    ) as rt:
        rt.register_agent("stock", "Reserves stock.", broken, input_schema=SCHEMA, triggers=ORDERS)
        published = order_event()
        rt.backends.bus.publish([published])
        result = rt.wait(standing_of(rt, published).id, timeout=60)
        assert result.status == "failed"
        (version,) = rt.backends.registry.versions("stock")
        view = rt.orchestration(result.orchestration_id)
    assert version.stats.failed == 1 and version.state is AgentState.QUARANTINED
    report = build_report(view.orchestration, view.tasks)
    assert report["triggered_by"] == "evt-1" and report["reactive_tasks"] == 0
    text = render_text(report)
    assert "standing: bus triggers fired by event evt-1 (no planner)" in text
    assert "error: stock@1 failed: NonRetryableError: no stock for 7" in text
    assert "<span>standing: event evt-1</span>" in render_html(report)
    code, shown, _ = invoke("orchestrations", "show", result.orchestration_id, "--home", str(tmp_path / "home"))
    assert code == 0 and "standing: bus triggers fired by event evt-1 (no planner)" in shown
