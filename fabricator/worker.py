"""Runs ``fabricate`` tasks: claim, fabricate, then write the result and emit the completion like any task."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from blackboard import (
    AgentManifest,
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

        A request that ``replaces`` a quarantined version has no task: see :meth:`replace`.
        The fabrication is a span of the orchestration's trace (continued from the request's ``traceparent``).
        """
        if request.replaces is not None and request.replaces_version is not None:
            self.replace(request)
            return None
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
            token=request.token,
        )
        started = time.perf_counter()
        usage_before = self.fabricator.generator.usage
        try:
            result = self.fabricator.fabricate(request)
        except FabricationFailedError as exc:
            outcome = Outcome(
                TaskState.FAILED, error=TaskError(type="FabricationFailed", message=exc.for_planner(), retryable=False)
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
                    "examples_passed": result.examples_passed,
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

    def replace(self, request: FabricationRequest) -> AgentManifest | None:
        """Write the next version of a quarantined agent; ``None`` if it was replaced already or no draft passed.

        The outcome is added to the reflection note of the orchestration that quarantined the agent.
        """
        assert request.replaces is not None and request.replaces_version is not None
        backends = self.fabricator.backends
        name, version = request.replaces, request.replaces_version
        if backends.registry.next_version(name) != version + 1:
            logger.debug("agent=<%s@%s> | already followed by a newer version, not rewriting", name, version)
            return None
        try:
            result = self.fabricator.fabricate(request)
        except Exception as exc:
            logger.warning("agent=<%s@%s> | no new version: %s", name, version, exc)
            self._note(request, {"replacement": None, "error": str(exc)[:2000]})
            return None
        agent = result.agent
        logger.info("agent=<%s>, state=<%s> | replaces %s@%s", agent.ref, agent.state.value, name, version)
        self._note(request, {"replacement": str(agent.ref), "replacement_state": agent.state.value})
        return agent

    def _note(self, request: FabricationRequest, outcome: dict[str, Any]) -> None:
        board = self.fabricator.backends.blackboard
        key = f"reflection:{request.replaces}@{request.replaces_version}"
        for _ in range(5):  # the note is written by reflection first; retry on a concurrent writer
            current = board.get_note(request.orchestration_id, key)
            value = {**(current.value if current is not None and isinstance(current.value, dict) else {}), **outcome}
            expected = 0 if current is None else current.version
            if board.put_note(
                request.orchestration_id, key, value, author="fabricator", expected_version=expected
            ).applied:
                return

    def run(self, queue: TaskQueue, stop: threading.Event, *, wait_seconds: float = 0.5) -> None:
        """Take fabrication requests from ``queue`` until ``stop`` is set (one at a time: drafts are model-bound)."""
        serve_queue(queue, FabricationRequest, self.handle, concurrency=1, stop=stop, wait_seconds=wait_seconds)
