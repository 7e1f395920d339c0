"""Lambda entry point of the Arbiter: ingress events, ``task.completed`` events and the scheduled sweep.

Handler: ``arbiter.aws_lambda.handler``. EventBridge invokes it for three kinds of event, told apart by the event:

- the schedule (``source: aws.events``, ``detail-type: Scheduled Event``): one watchdog sweep;
- a completion (``source: arbiter.wrapper``, ``detail-type: task.completed``, from this function's own account):
  recorded if it carries its task's token; the completion that closes its wave plans the next one;
- an announcement (``source: arbiter.fabricator``, ``detail-type: agent.published``, from this function's own
  account, by the bus-triggers rule): the standing orchestration of the bus triggers it fires (once per event), if
  any fires;
- anything else the ingress rule lets through: a new orchestration (idempotent on the event id), once it crossed
  the strict JSON boundary (:func:`blackboard.ingress_event`: bounded size, depth and integers, no NaN, no lone
  surrogate, no reserved ``arbiter``/``arbiter.*`` source). An event from another source is never taken for a
  completion, whatever its detail-type; a replay of an event id with other content is deduplicated and counted as
  an ``EventConflicts`` metric. Such an event also starts the standing orchestration of the bus triggers it fires
  (``"triggered"`` in the answer names it).

A malformed event is rejected with a clear error in the log and a ``RejectedEvents`` metric, and not retried (it can
never succeed). A completion without its task's token, or from another account, is refused (logged, a
``RefusedCompletions`` metric) and records nothing. Any other error, a transient planner failure (throttling, a
timeout, a 5xx answer) among them, is raised, so that EventBridge's retry policy and the target's dead-letter queue
take over; every step is idempotent, and a redelivered event takes its orchestration on from where it stopped.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from arbiter.exceptions import ArbiterError
from blackboard import Event, RecordValidationError, ingress_event, tracing
from blackboard.announcements import AGENT_PUBLISHED_DETAIL_TYPE, FABRICATOR_SOURCE
from blackboard.messages import COMPLETION_DETAIL_TYPE, COMPLETION_SOURCE, CompletionEvent
from wrapper.aws_lambda import PerEnvironment, lambda_logger, lambda_metrics
from wrapper.constants import ENV_MODEL

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from arbiter.coordinator import Coordinator

__all__ = ["SCHEDULE_DETAIL_TYPE", "SCHEDULE_SOURCE", "handler", "reset"]

#: What an EventBridge schedule sends.
SCHEDULE_SOURCE = "aws.events"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"

logger = lambda_logger("arbiter")
metrics = lambda_metrics()


def _build_coordinator() -> Coordinator:
    from arbiter.coordinator import EngineSettings
    from arbiter.engine import build_coordinator
    from blackboard.adapters.aws import AwsConfig, aws_backends, fabrication_queue
    from wrapper.matching import matcher_for

    config = AwsConfig.from_env()
    backends = aws_backends(config)
    return build_coordinator(
        backends,
        os.environ.get(ENV_MODEL) or None,
        # A transient planner failure is raised: EventBridge delivers the event again, with backoff.
        settings=EngineSettings(raise_transient=True),
        fabrication_queue=fabrication_queue(config) if config.fabrication_queue_url else None,
        matcher=matcher_for(backends.registry, None),
    )


_coordinator = PerEnvironment(_build_coordinator)


def coordinator() -> Coordinator:
    """The function's coordinator, built once per execution environment from the ``ARBITER_*`` variables."""
    return _coordinator.get()


def reset() -> None:
    """Drop the cached coordinator (a new configuration; tests)."""
    _coordinator.reset()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Handle one EventBridge event (see the module's docstring)."""
    try:
        return _handle(event, _account_of(context))
    except ArbiterError as exc:
        if exc.retryable:  # raised for EventBridge's retry policy; counted so that a storm shows
            logger.warning("transient failure, raised for a retry", error=str(exc), error_type=type(exc).__name__)
            metrics.add_metric(name="TransientErrors", unit=MetricUnit.Count, value=1)
        raise
    finally:
        tracing.flush()


def _account_of(context: LambdaContext) -> str:
    """The function's own account id (from its ARN ``arn:aws:lambda:<region>:<account>:function:<name>``)."""
    parts = str(getattr(context, "invoked_function_arn", "")).split(":")
    return parts[4] if len(parts) > 4 else ""


def _handle(event: dict[str, Any], account: str) -> dict[str, Any]:
    try:
        parse(event=event, model=EventBridgeModel)
        parsed = Event.parse(event)
    except (ValidationError, RecordValidationError) as exc:
        logger.error("rejected a malformed event", error=str(exc), event_id=event.get("id"))
        metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
        return {"status": "rejected", "error": str(exc)}
    engine = coordinator()
    if parsed.source == SCHEDULE_SOURCE and parsed.detail_type == SCHEDULE_DETAIL_TYPE:
        from arbiter.sweeper import Sweeper

        report = Sweeper(engine).sweep()
        for name, value in vars(report).items():
            metrics.add_metric(name="".join(p.title() for p in name.split("_")), unit=MetricUnit.Count, value=value)
        return {"status": "swept", **vars(report)}
    if parsed.source == COMPLETION_SOURCE and parsed.detail_type == COMPLETION_DETAIL_TYPE:
        logger.append_keys(
            orchestration_id=parsed.detail.get("orchestration_id"),
            task_id=parsed.detail.get("task_id"),
            trace_id=tracing.trace_id_of(parsed.detail.get("traceparent")),
        )
        if account and parsed.account and parsed.account != account:
            return _refused(f"it was put on the bus from account {parsed.account}, not this one")
        try:
            accepted = engine.on_completion(CompletionEvent.parse(parsed.detail))
        except RecordValidationError as exc:
            logger.error("rejected a malformed completion", error=str(exc))
            metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
            return {"status": "rejected", "error": str(exc)}
        if not accepted:
            return _refused("it does not carry its task's token")
        metrics.add_metric(name="Completions", unit=MetricUnit.Count, value=1)
        return {"status": "recorded"}
    if parsed.source == FABRICATOR_SOURCE and parsed.detail_type == AGENT_PUBLISHED_DETAIL_TYPE:
        if account and parsed.account and parsed.account != account:
            logger.warning("refused an announcement from another account", account=parsed.account)
            metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
            return {"status": "rejected", "error": f"agent.published put on the bus from account {parsed.account}"}
        standing = engine.trigger(parsed)
        if standing is None:
            metrics.add_metric(name="UntriggeredAnnouncements", unit=MetricUnit.Count, value=1)
            return {"status": "no trigger"}
        metrics.add_metric(name="StandingOrchestrations", unit=MetricUnit.Count, value=1)
        return {"status": "triggered", "orchestration_id": standing.id}
    try:
        parsed = ingress_event(event)
    except RecordValidationError as exc:
        logger.error("rejected an ingress event", error=str(exc), event_id=event.get("id"))
        metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
        return {"status": "rejected", "error": str(exc)}
    # The first turn's agents and the event's bus triggers come from one reading of the registry's revision.
    with engine.backends.registry.one_revision():
        return _start(engine, parsed)


def _start(engine: Coordinator, parsed: Event) -> dict[str, Any]:
    orchestration = engine.start(parsed, read_back=False)  # its id and event are all this needs: no read
    if not orchestration.event.same_content(parsed):
        metrics.add_metric(name="EventConflicts", unit=MetricUnit.Count, value=1)
        return {"status": "conflict", "orchestration_id": orchestration.id}
    logger.append_keys(orchestration_id=orchestration.id)
    logger.info("orchestration started", source=parsed.source, detail_type=parsed.detail_type)
    metrics.add_metric(name="Orchestrations", unit=MetricUnit.Count, value=1)
    answer: dict[str, Any] = {"status": "started", "orchestration_id": orchestration.id}
    standing = engine.trigger(parsed)
    if standing is not None:
        metrics.add_metric(name="StandingOrchestrations", unit=MetricUnit.Count, value=1)
        answer["triggered"] = standing.id
    return answer


def _refused(reason: str) -> dict[str, Any]:
    """A completion that did not prove it came from the engine: counted, not retried (it can never succeed)."""
    logger.warning("refused a completion", reason=reason)
    metrics.add_metric(name="RefusedCompletions", unit=MetricUnit.Count, value=1)
    return {"status": "refused", "error": f"completion refused: {reason}"}
