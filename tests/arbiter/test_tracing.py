"""One trace per orchestration: across the queue and bus hops, the sandbox child, fabrication and Strands' spans."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from arbiter import LocalRuntime
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from tests.arbiter.conftest import FAST, event
from tests.fabrication_turns import WORD_COUNT_OUTPUT, WORD_COUNT_TESTS
from wrapper import SandboxPool


class _Switch(SpanExporter):
    """Forwards to the exporter of the running test, if any: a tracer provider is set once per process for good."""

    target: InMemorySpanExporter | None = None

    def export(self, spans: Any) -> SpanExportResult:
        if self.target is not None:
            return self.target.export(spans)
        return SpanExportResult.SUCCESS


_SWITCH = _Switch()
_INSTALLED: list[bool] = []

COUNTER = "def handler(text: str) -> dict:\n    return {'words': len(text.split())}\n"
TRIPLE = "from wrapper import sdk\n\ndef handler(n):\n    sdk.note('last', n)\n    return n * 3\n"
DRAFT = {
    "structured": {
        "name": "word_counter",
        "description": "Counts the words of a text.",
        "code": COUNTER,
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        "output_schema": WORD_COUNT_OUTPUT,
        "sample_inputs": [{"text": "one two three"}],
    }
}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The global tracer provider (set once per process) exporting to memory for this test only."""
    if not _INSTALLED:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(_SWITCH))
        _INSTALLED.append(True)
    exporter = InMemorySpanExporter()
    _SWITCH.target = exporter
    yield exporter
    _SWITCH.target = None


def call(name: str, **data: Any) -> dict[str, Any]:
    return {"name": name, "input": data}


def _parent(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> ReadableSpan | None:
    return by_id.get(span.parent.span_id) if span.parent is not None else None


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    current = _parent(span, by_id)
    while current is not None:
        names.append(current.name)
        current = _parent(current, by_id)
    return names


def test_one_trace_across_every_hop(
    tmp_path: Path, pool: SandboxPool, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARBITER_FABRICATOR_TESTS", "settle")  # the Fabricator writes tests first: their span too
    module = tmp_path / "triple.py"
    module.write_text(TRIPLE)
    turns = [
        {"tool_calls": [call("fabricate", capability="Count the words in a piece of text."), call("triple", n=5)]},
        {"tool_calls": [call("word_counter", text="a b c")]},
        {"text": "3 words, and 15"},
    ]
    with LocalRuntime(
        tmp_path / "home",
        model=ScriptedModel(turns),
        fabricator_model=ScriptedModel([WORD_COUNT_TESTS, DRAFT]),
        settings=FAST,
        matching="all",
        deployment=Deployment(sandbox=pool, sweep_interval=0.1),
    ) as rt:
        rt.register_agent("triple", "Triples a number.", module, input_schema={"type": "object"})
        result = rt.run(event(), timeout=120)
        orchestration = rt.orchestration(result.orchestration_id).orchestration
    # Closing the runtime joined its threads: every span has ended.
    assert result.ok, result.error
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    names = [s.name for s in finished]

    (root,) = [s for s in finished if s.name == "arbiter.orchestration"]
    assert root.parent is None
    assert {s.context.trace_id for s in finished} == {root.context.trace_id}, "more than one trace"
    assert orchestration.traceparent is not None
    assert orchestration.traceparent.split("-")[1] == format(root.context.trace_id, "032x")

    plans = [s for s in finished if s.name == "arbiter.plan"]
    assert len(plans) == 3 and all("arbiter.orchestration" in _ancestors(s, by_id) for s in plans)
    assert _parent(plans[0], by_id) is root

    # Queue hop: each execution continues the dispatch that sent its message.
    executions = [s for s in finished if s.name == "wrapper.execute"]
    assert len(executions) == 2
    for execution in executions:
        assert _ancestors(execution, by_id)[:1] == ["arbiter.dispatch"]
        assert "arbiter.orchestration" in _ancestors(execution, by_id)
        inside = {s.name for s in finished if _parent(s, by_id) is execution}
        assert {"wrapper.claim", "wrapper.load", "wrapper.run.sandbox"} <= inside

    # The sandbox child's span, re-emitted by the pool, sits under the run of each execution.
    children = [s for s in finished if s.name == "sandbox.child"]
    in_runs = [s for s in children if _ancestors(s, by_id)[:2] == ["wrapper.run.sandbox", "wrapper.execute"]]
    assert len(in_runs) == 2

    # Bus hop: completion handling continues the execution (or fabrication) that emitted it.
    completions = [s for s in finished if s.name == "arbiter.completion"]
    assert len(completions) == 3
    assert {_ancestors(s, by_id)[0] for s in completions} == {"wrapper.execute", "fabricator.fabricate"}

    # Fabrication and its validation, whose two tests and one sample each ran in a sandbox child.
    (fabrication,) = [s for s in finished if s.name == "fabricator.fabricate"]
    assert _ancestors(fabrication, by_id)[0] == "arbiter.dispatch"
    (validation,) = [s for s in finished if s.name == "fabricator.validate"]
    assert "fabricator.fabricate" in _ancestors(validation, by_id)
    sample_children = [s for s in children if _ancestors(s, by_id)[:2] == ["fabricator.sample", "fabricator.validate"]]
    assert len(sample_children) == 3
    assert "fabricator.publish" in names

    # Writing the tests, then the draft: one model call each, both spans of the fabrication, in that order.
    (tests_span,) = [s for s in finished if s.name == "fabricator.tests"]
    (generate,) = [s for s in finished if s.name == "fabricator.generate"]
    assert _parent(tests_span, by_id) is fabrication and _parent(generate, by_id) is fabrication
    assert tests_span.end_time is not None and generate.start_time is not None
    assert tests_span.end_time <= generate.start_time


def test_a_planned_wave_is_dispatched_under_the_root_span_without_reading_the_orchestration(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arbiter.coordinator import Coordinator
    from arbiter.planner import Planner
    from arbiter.prompts import SYSTEM_PROMPT
    from blackboard import AgentManifest, Event, memory_backends

    backends = memory_backends()
    code = backends.code_store.put(b"def handler(**kw):\n    return 1\n")
    backends.registry.put(AgentManifest(name="alpha", version=1, description="alpha does alpha things.", code=code))
    model = ScriptedModel([{"tool_calls": [{"name": "alpha", "input": {}}]}])
    coordinator = Coordinator(backends, Planner(model, SYSTEM_PROMPT))
    reads: list[str] = []
    reading = backends.blackboard.get_orchestration

    def counted(orchestration_id: str) -> Any:
        reads.append(orchestration_id)
        return reading(orchestration_id)

    monkeypatch.setattr(backends.blackboard, "get_orchestration", counted)
    orchestration = coordinator.start(Event.parse({"source": "s", "detail-type": "d", "detail": {}}))
    assert reads == [orchestration.id]  # the start's read back only: the dispatch took the root span it held
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    (dispatch,) = [s for s in finished if s.name == "arbiter.dispatch"]
    assert _ancestors(dispatch, by_id) == ["arbiter.orchestration"]
