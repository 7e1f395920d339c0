"""The tracing facade and JSON logs: traceparent round trip, log context, the no-op path without OpenTelemetry."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from blackboard import tracing
from blackboard.logs import JsonFormatter, configure_logging, resolve_log_format

ROOT = Path(__file__).resolve().parents[2]


def _provider() -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())


def test_traceparent_continues_across_a_hop() -> None:
    _provider()
    assert tracing.enabled()
    with tracing.start_span("sender") as sender:
        traceparent = tracing.current_traceparent()
    assert traceparent is not None and traceparent.startswith("00-")
    assert traceparent.split("-")[1] == format(sender.get_span_context().trace_id, "032x")
    assert tracing.current_traceparent() is None  # the span ended and is no longer current
    with tracing.start_span("receiver", parent=traceparent, attributes={"n": 1, "skipped": None}) as receiver:
        assert receiver.get_span_context().trace_id == sender.get_span_context().trace_id
        assert receiver.parent.span_id == sender.get_span_context().span_id
        assert tracing.inject(receiver) == tracing.current_traceparent()
    assert tracing.extract(None) is None


def test_json_logs_carry_the_context() -> None:
    _provider()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        with tracing.bind(orchestration_id="o1", attempt=2), tracing.start_span("work") as span:
            with tracing.bind(task_id="t1", agent="echo@1"):
                logger.info("task_id=<%s> | done", "t1")
            logger.info("outside the task")
        logger.info("no context")
    finally:
        logger.removeHandler(handler)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "task_id=<t1> | done" and first["level"] == "INFO"
    assert (first["orchestration_id"], first["task_id"], first["agent"], first["attempt"]) == ("o1", "t1", "echo@1", 2)
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "task_id" not in second and second["orchestration_id"] == "o1"
    assert set(third) == {"time", "level", "logger", "message"}


def test_log_format_resolution(monkeypatch: object) -> None:
    assert resolve_log_format("JSON") == "json"
    assert resolve_log_format(None) in ("text", "json")
    try:
        configure_logging("xml")
    except ValueError as exc:
        assert "ARBITER_LOG_FORMAT" in str(exc)
    else:
        raise AssertionError("an unknown log format must be refused")


NO_OTEL = textwrap.dedent(
    """
    import importlib.abc, io, json, logging, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ImportError(f"blocked: {name}")
            return None

    sys.meta_path.insert(0, Block())
    from blackboard import tracing
    from blackboard.logs import JsonFormatter
    import importlib.util
    # wrapper/__init__ imports strands, which needs OpenTelemetry: load the span relay module on its own.
    spec = importlib.util.spec_from_file_location("spans", "wrapper/sandbox/_spans.py")
    _spans = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_spans)

    assert not tracing.enabled()
    with tracing.start_span("x", parent="00-" + "1" * 32 + "-" + "2" * 16 + "-01", attributes={"a": 1}) as span:
        assert span is None and tracing.current_traceparent() is None
    assert tracing.inject() is None and tracing.extract("00-x") is None
    with _spans.recording("00-" + "1" * 32 + "-" + "2" * 16 + "-01") as recorded:
        pass
    assert recorded == [] and _spans.emit([{"name": "x"}]) == 0
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    with tracing.bind(orchestration_id="o1", task_id="t1"):
        logging.getLogger("x").warning("hello")
    line = json.loads(stream.getvalue())
    assert line["orchestration_id"] == "o1" and "trace_id" not in line, line
    assert not any(m.startswith("opentelemetry") for m in sys.modules)
    print("no-op ok")
    """
)


def test_without_opentelemetry_everything_is_a_no_op() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_OTEL], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no-op ok"
