"""Tracing and log context, for every layer: a thin facade over OpenTelemetry that costs nothing without it.

One trace per orchestration. Its context crosses process and queue boundaries as a W3C ``traceparent`` string
(``00-<trace id>-<span id>-<flags>``) inside task messages, completion events and fabrication requests; each hop
continues it with :func:`start_span` (``parent=`` the traceparent it received). Within a process the current span
is OpenTelemetry's context, so spans opened meanwhile — Strands' agent and model spans included — nest inside.

Without ``opentelemetry`` installed (the ``tracing`` extra) every function here is a no-op: :func:`start_span`
yields ``None``, :func:`current_traceparent` returns ``None``; the same while no ``TracerProvider`` is set in this
process (then a message's ``traceparent`` is passed on only where the message itself is answered, as by a completion).
With one, spans go to the global ``TracerProvider``: configure it (an exporter) in the application, as
OpenTelemetry's documentation describes.

:func:`bind` sets the log context (orchestration, task, agent, attempt) of the current thread or task;
:func:`log_context` returns it with the current trace id, for any logger to add to its records.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = [
    "TRACER_NAME",
    "Attributes",
    "bind",
    "current_traceparent",
    "enabled",
    "extract",
    "flush",
    "inject",
    "log_context",
    "recording",
    "start_span",
    "trace_id_of",
]

#: The instrumentation scope of Arbiter's spans.
TRACER_NAME = "arbiter"

AttributeValue = str | bool | int | float
#: Span attributes as :func:`start_span` takes them (``None`` values are left out).
Attributes = Mapping[str, AttributeValue | None]

try:
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the tracing extra is not installed: everything below is a no-op
    _trace = None  # type: ignore[assignment]
    _propagator = None
else:
    _propagator = TraceContextTextMapPropagator()

_LOG_FIELDS = ("orchestration_id", "task_id", "agent", "attempt")
_log_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "arbiter_log_context", default=None
)


def enabled() -> bool:
    """Whether OpenTelemetry is importable (spans are then recorded if a provider with an exporter is set)."""
    return _trace is not None


def recording() -> bool:
    """Whether spans are recorded: OpenTelemetry is importable and a tracer provider is set in this process."""
    return _trace is not None and not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider)


def extract(traceparent: str | None) -> Any:
    """The OpenTelemetry context a ``traceparent`` string names (``None`` without one or without OpenTelemetry)."""
    if _propagator is None or not traceparent:
        return None
    return _propagator.extract({"traceparent": traceparent})


def inject(span: Any = None) -> str | None:
    """The ``traceparent`` of ``span`` (default: the current span), or ``None`` when there is no valid span."""
    if _trace is None or _propagator is None:
        return None
    if span is None:
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        return carrier.get("traceparent")
    carrier = {}
    _propagator.inject(carrier, context=_trace.set_span_in_context(span))
    return carrier.get("traceparent")


def current_traceparent() -> str | None:
    """The ``traceparent`` of the current span, to put into a message that leaves this process."""
    return inject()


@contextmanager
def start_span(
    name: str,
    parent: str | None = None,
    attributes: Attributes | None = None,
    links: Sequence[str | None] = (),
    *,
    root: bool = False,
) -> Iterator[Any]:
    """Open a span and make it current for the block; it ends (recording any exception) when the block exits.

    Args:
        name: the span name (``arbiter.plan``, ``wrapper.execute``...).
        parent: the ``traceparent`` to continue (a message's); ``None`` continues the current span, or starts a
            new trace when there is none.
        attributes: span attributes; ``None`` values are left out.
        links: ``traceparent`` strings of spans this one follows from without being their child (the note write
            that triggered a reactive task); ``None`` entries are left out.
        root: start a new trace whatever the current span (a standing orchestration, started while the span that
            published its event is current: that span is a link, not its parent).

    Yields:
        The OpenTelemetry span, or ``None`` without OpenTelemetry.
    """
    if not recording():
        yield None  # no provider set in this process: nothing would record, so skip the context work
        return
    parent_context = extract(parent) if parent else None
    if root and parent_context is None and _propagator is not None:
        parent_context = _propagator.extract({})  # an empty context: no parent
    clean = {key: value for key, value in (attributes or {}).items() if value is not None}
    linked = [_trace.Link(_trace.get_current_span(extract(tp)).get_span_context()) for tp in links if tp]
    tracer = _trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(name, context=parent_context, attributes=clean, links=linked) as span:
        yield span


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields (``orchestration_id``, ``task_id``, ``agent``, ``attempt``) to the log context for the block."""
    merged = {**(_log_context.get() or {}), **{key: value for key, value in fields.items() if value is not None}}
    token = _log_context.set(merged)
    try:
        yield
    finally:
        _log_context.reset(token)


def log_context() -> dict[str, Any]:
    """The log context of the caller: the bound fields and, inside a recorded span, ``trace_id`` and ``span_id``.

    Any logger can add it to its records (``blackboard.logs.JsonFormatter`` does; on Lambda, Powertools'
    ``Logger.append_keys(**log_context())``).
    """
    fields = {key: value for key, value in (_log_context.get() or {}).items() if key in _LOG_FIELDS}
    if _trace is not None:
        span_context = _trace.get_current_span().get_span_context()
        if span_context.is_valid:
            fields["trace_id"] = format(span_context.trace_id, "032x")
            fields["span_id"] = format(span_context.span_id, "016x")
    return fields


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans the tracer provider still holds (Lambda freezes the process between invocations)."""
    if _trace is None:
        return
    force_flush = getattr(_trace.get_tracer_provider(), "force_flush", None)
    if force_flush is not None:
        force_flush(timeout_millis)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id in a W3C ``traceparent`` (``None`` if there is none or it is malformed)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None
