"""Spans across the sandbox boundary: the child records its spans, the pool re-emits them under the caller's span.

The child cannot export spans itself: it has no network (and must not get any for this) and lives for one task.
So, when the task context carries a ``traceparent``, the child installs a recording ``TracerProvider`` (its own
process, forked from a zygote that never set one), opens ``sandbox.child`` as a child of that ``traceparent`` — the
worker's own spans, Strands' agent and model spans included, nest inside — and returns the finished spans as plain
data with its result. The pool (trusted side) re-creates them through the global tracer provider under the span
that is current in the calling thread, keeping their names, times, attributes, events and status.

The child's span data is untrusted: it is bounded (count, names, attributes) and can only add spans under the
execution's own span.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["MAX_SPANS", "emit", "recording"]

#: Most spans one child may return; the rest are dropped.
MAX_SPANS = 256
_MAX_NAME = 128
_MAX_ATTRIBUTES = 32
_MAX_TEXT = 1024
_MAX_EVENTS = 16


@contextmanager
def recording(traceparent: str | None) -> Iterator[list[dict[str, Any]]]:
    """In the child: record every span opened in the block under ``sandbox.child``; yields the list they fill.

    A no-op (an empty list) without a ``traceparent`` or without the OpenTelemetry SDK.
    """
    spans: list[dict[str, Any]] = []
    if not traceparent:
        yield spans
        return
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        yield spans
        return

    class _Collect(SpanExporter):
        def export(self, batch: Sequence[ReadableSpan]) -> SpanExportResult:
            spans.extend(_as_data(span) for span in batch if len(spans) < MAX_SPANS)
            return SpanExportResult.SUCCESS

    # An empty resource: the default one looks up detector entry points, ~20 ms a child. The spans are re-created
    # by the pool, under the application's resource.
    provider = TracerProvider(resource=Resource.get_empty())
    provider.add_span_processor(SimpleSpanProcessor(_Collect()))
    trace.set_tracer_provider(provider)  # this process is one task's child: nobody set one before
    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    with provider.get_tracer("arbiter.sandbox").start_as_current_span("sandbox.child", context=parent):
        yield spans


def _as_data(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
        "kind": span.kind.name,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
        "events": [
            {"name": event.name, "time": event.timestamp, "attributes": dict(event.attributes or {})}
            for event in span.events[:_MAX_EVENTS]
        ],
        "error": (span.status.description or "error") if span.status.status_code.name == "ERROR" else None,
    }


def emit(spans: Sequence[Mapping[str, Any]]) -> int:
    """On the trusted side: re-create the child's spans under the current span; returns how many were emitted."""
    if not spans:
        return 0
    try:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode
    except ImportError:
        return 0
    tracer = trace.get_tracer("arbiter.sandbox")
    valid = [s for s in spans[:MAX_SPANS] if _valid(s)]
    known = {s["span_id"] for s in valid}
    created: dict[str, Any] = {}
    pending = sorted(valid, key=lambda s: s["start"])
    # Parents before children: a span waits until its parent (if it is one of the child's) exists.
    while pending:
        waiting = []
        for data in pending:
            parent_id = data.get("parent_id")
            if parent_id in known and parent_id not in created:
                waiting.append(data)
                continue
            parent = trace.set_span_in_context(created[parent_id]) if parent_id in created else None
            span = tracer.start_span(
                str(data["name"])[:_MAX_NAME],
                context=parent,
                kind=SpanKind.__members__.get(str(data.get("kind")), SpanKind.INTERNAL),
                attributes=_attributes(data.get("attributes")),
                start_time=int(data["start"]),
            )
            for event in list(data.get("events") or [])[:_MAX_EVENTS]:
                if isinstance(event, Mapping) and isinstance(event.get("time"), int):
                    span.add_event(
                        str(event.get("name", ""))[:_MAX_NAME], _attributes(event.get("attributes")), event["time"]
                    )
            if data.get("error"):
                span.set_status(Status(StatusCode.ERROR, str(data["error"])[:_MAX_TEXT]))
            span.end(end_time=int(data["end"]))
            created[data["span_id"]] = span
        if len(waiting) == len(pending):  # a cycle: the rest hang off the current span
            known -= {s["span_id"] for s in waiting}
        pending = waiting
    return len(created)


def _valid(data: Mapping[str, Any]) -> bool:
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("name"), str)
        and isinstance(data.get("span_id"), str)
        and isinstance(data.get("start"), int)
        and isinstance(data.get("end"), int)
        and data["end"] >= data["start"]
    )


def _attributes(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        return {}
    clean: dict[str, Any] = {}
    for key, value in list(raw.items())[:_MAX_ATTRIBUTES]:
        if isinstance(value, bool | int | float):
            clean[str(key)[:_MAX_NAME]] = value
        elif isinstance(value, str):
            clean[str(key)[:_MAX_NAME]] = value[:_MAX_TEXT]
        elif isinstance(value, list | tuple) and all(isinstance(v, str | bool | int | float) for v in value):
            clean[str(key)[:_MAX_NAME]] = [v[:_MAX_TEXT] if isinstance(v, str) else v for v in value][:_MAX_ATTRIBUTES]
    return clean


def _warm() -> None:
    """Pay the SDK's first-use costs (a regex compiled by ``get_tracer``, ~10 ms) once in the zygote, not per child."""
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
    except ImportError:
        return
    TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False).get_tracer("arbiter.sandbox")


_warm()
