"""Runs ``fabricate`` tasks: claim, fabricate, then write the result and emit the completion like any task."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

from blackboard import (
    AgentRef,
    AgentState,
    CompletionEvent,
    FabricationRequest,
    TaskError,
    TaskMessage,
    TaskQueue,
    TaskState,
    Usage,
    tracing,
)
from fabricator.fabricator import FabricationFailedError, Fabricator
from wrapper.executor import Executor, Outcome
from wrapper.worker import serve_queue

__all__ = ["FabricationWorker"]

logger = logging.getLogger(__name__)

FABRICATE = AgentRef(name="fabricate")


class FabricationWorker:
    """Handles fabrication requests for the engine.

    Args:
        fabricator: what writes and publishes agents.
        executor: used to report results (write, then emit the completion) exactly as for any other task.
    """

    def __init__(self, fabricator: Fabricator, executor: Executor) -> None:
        self.fabricator = fabricator
        self.executor = executor

    def handle(self, request: FabricationRequest) -> CompletionEvent | None:
        """Fabricate for one request; ``None`` if its task's claim did not apply (a duplicate or stale request).

        The fabrication is a span of the orchestration's trace (continued from the request's ``traceparent``).
        """
        attributes = {"arbiter.task_id": request.task_id, "arbiter.capability": request.capability[:256]}
        with (
            tracing.bind(
                orchestration_id=request.orchestration_id,
                task_id=request.task_id,
                agent=FABRICATE.name,
                attempt=request.attempt,
            ),
            tracing.start_span("fabricator.fabricate", parent=request.traceparent, attributes=attributes),
        ):
            return self._handle(request)

    def _handle(self, request: FabricationRequest) -> CompletionEvent | None:
        board = self.fabricator.backends.blackboard
        if not board.claim(request.orchestration_id, request.task_id, request.attempt).applied:
            return None
        message = TaskMessage(
            orchestration_id=request.orchestration_id,
            task_id=request.task_id,
            attempt=request.attempt,
            agent=FABRICATE,
            input={"capability": request.capability, "inputs": request.inputs},
            deadline=request.deadline,
            traceparent=request.traceparent,
        )
        started = time.perf_counter()
        usage_before = self.fabricator.generator.usage
        try:
            result = self.fabricator.fabricate(request)
        except FabricationFailedError as exc:
            outcome = Outcome(
                TaskState.FAILED, error=TaskError(type="FabricationFailed", message=str(exc), retryable=False)
            )
        except Exception as exc:
            logger.exception("task_id=<%s> | fabrication failed", request.task_id)
            error = TaskError(type=type(exc).__name__, message=str(exc), retryable=getattr(exc, "retryable", False))
            outcome = Outcome(TaskState.FAILED, error=error)
        else:
            agent = result.agent
            ready = agent.state is AgentState.ACTIVE
            outcome = Outcome(
                TaskState.SUCCEEDED,
                {
                    "agent": agent.name,
                    "version": agent.version,
                    "state": agent.state.value,
                    "reused": result.reused,
                    "description": agent.description,
                    "input_schema": agent.input_schema,
                    "note": (
                        f"call the tool {agent.name!r} from your next turn"
                        if ready
                        else f"{agent.name}@{agent.version} waits for a person's approval; it cannot be called yet"
                    ),
                },
            )
        after = self.fabricator.generator.usage
        usage = Usage(
            input_tokens=after.input_tokens - usage_before.input_tokens,
            output_tokens=after.output_tokens - usage_before.output_tokens,
            total_tokens=after.total_tokens - usage_before.total_tokens,
        )
        outcome = replace(outcome, duration_ms=(time.perf_counter() - started) * 1000, usage=usage)
        return self.executor.report(message, outcome)

    def run(self, queue: TaskQueue, stop: threading.Event, *, wait_seconds: float = 0.5) -> None:
        """Take fabrication requests from ``queue`` until ``stop`` is set (one at a time: drafts are model-bound)."""
        serve_queue(queue, FabricationRequest, self.handle, concurrency=1, stop=stop, wait_seconds=wait_seconds)
