"""Lambda entry point of the wrapper: an SQS batch of task messages, each executed, failures reported per record.

Handler: ``wrapper.aws_lambda.handler``, fed by the task queue with ``ReportBatchItemFailures``. A record whose
body cannot be read, or whose execution raised, is reported as a batch item failure: SQS delivers it again and
dead-letters it after the queue's ``maxReceiveCount``. A duplicate delivery (its conditional claim does not apply)
succeeds without running anything, so nothing runs twice.

Spans of the executions continue each message's ``traceparent`` and are flushed before the invocation returns
(configure a tracer provider, e.g. with the AWS Distro for OpenTelemetry layer). The engine is built on the first
invocation, not at import, to keep cold starts lean; see :func:`process_sqs_batch`
for the loop the Fabricator's function shares. With ``ARBITER_SANDBOX_FUNCTION`` set, sandboxed workers run in that
function (see ``wrapper.sandbox_function``), whose role is the worker role; otherwise they run in a local pool and
get temporary credentials of the worker role (``ARBITER_WORKER_ROLE_ARN``), which can invoke Bedrock models and
nothing else.

Each task's run time is capped by what the invocation has left (``context.get_remaining_time_in_millis()``) less
:data:`REPORT_MARGIN_SECONDS`, so that its result is written and its completion emitted before Lambda stops the
invocation; a task that finds no time left is not started and its record is retried.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from blackboard import FabricationRequest, OrchestrationNotFoundError, TaskMessage, TaskNotFoundError, tracing
from blackboard.adapters.aws._clients import make_client
from blackboard.ports.task_queue import parse_queue_message
from wrapper.constants import ENV_MODEL

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from wrapper.executor import Executor
    from wrapper.sandbox import SandboxPool

__all__ = [
    "ENV_SANDBOX_FUNCTION",
    "ENV_WORKER_ROLE",
    "REPORT_MARGIN_SECONDS",
    "PerEnvironment",
    "WorkerCredentials",
    "handler",
    "lambda_logger",
    "lambda_metrics",
    "process_sqs_batch",
    "reset",
    "worker_sandbox",
]

#: The role sandboxed workers act as on AWS (Bedrock invoke only).
ENV_WORKER_ROLE = "ARBITER_WORKER_ROLE_ARN"
#: The sandbox function untrusted code runs in (its execution role is the worker role); unset: a local pool.
ENV_SANDBOX_FUNCTION = "ARBITER_SANDBOX_FUNCTION"

#: Seconds kept back from a task's run, out of the invocation's remaining time, to write its result and emit it.
REPORT_MARGIN_SECONDS = 5.0

_M = TypeVar("_M", TaskMessage, FabricationRequest)
_T = TypeVar("_T")


def lambda_logger(service: str) -> Logger:
    """A Powertools logger (JSON, correlation ids) for one of the functions."""
    return Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", service))


def lambda_metrics() -> Metrics:
    """Powertools metrics (CloudWatch EMF) in the stack's namespace."""
    return Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Arbiter"))


logger = lambda_logger("arbiter-wrapper")
metrics = lambda_metrics()


class PerEnvironment(Generic[_T]):
    """One object per Lambda execution environment, built on the first invocation (not at import: lean cold starts).

    Args:
        build: makes the object from the ``ARBITER_*`` variables.
        close: releases it on :meth:`reset` (a sandbox pool, say).
    """

    def __init__(self, build: Callable[[], _T], close: Callable[[_T], None] | None = None) -> None:
        self._build = build
        self._close = close
        self._lock = threading.Lock()
        self._value: _T | None = None

    def get(self) -> _T:
        """The object, built now if this is the first call."""
        with self._lock:
            if self._value is None:
                self._value = self._build()
            return self._value

    def reset(self) -> None:
        """Drop (and close) the object: the next call builds a new one (a new configuration; tests)."""
        with self._lock:
            if self._value is not None and self._close is not None:
                self._close(self._value)
            self._value = None


class NotThisKindError(ValueError):
    """A queue message of another kind than the function handles (a misrouted message)."""


def process_sqs_batch(
    event: Mapping[str, Any],
    context: LambdaContext,
    kind: type[_M],
    handle: Callable[[_M], object | None],
    *,
    log: Logger,
    metric_prefix: str,
) -> dict[str, Any]:
    """Hand each record's message to ``handle`` and return the partial batch response.

    ``handle`` returns ``None`` when the message's claim did not apply (a duplicate): that record succeeds.
    """
    # A batch whose every record failed is reported like any other (each record retried, then dead-lettered).
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    counts: dict[str, int] = {"Executed": 0, "Dropped": 0, "DeadLettered": 0}

    def record_handler(record: SQSRecord) -> None:
        message = parse_queue_message(record.body)  # RecordValidationError: a failure, then the DLQ
        if not isinstance(message, kind):
            raise NotThisKindError(f"expected a {kind.__name__}, got {message.schema_}")
        log.append_keys(
            orchestration_id=message.orchestration_id,
            task_id=message.task_id,
            attempt=message.attempt,
            message_id=record.message_id,
            trace_id=tracing.trace_id_of(message.traceparent),
        )
        try:
            done = handle(message)
        except (TaskNotFoundError, OrchestrationNotFoundError) as exc:
            # Tasks are written before they are sent, so no later delivery can find this one: dead-letter it now
            # (the record then succeeds and is deleted) instead of failing it until maxReceiveCount.
            dead_letters.send(record)
            log.warning("no such task: moved to the dead-letter queue", error=str(exc))
            counts["DeadLettered"] += 1
            return
        finally:
            log.remove_keys(["orchestration_id", "task_id", "attempt", "message_id", "trace_id"])
        counts["Executed" if done is not None else "Dropped"] += 1

    try:
        response: dict[str, Any] = dict(
            process_partial_response(
                event=dict(event), record_handler=record_handler, processor=processor, context=context
            )
        )
    finally:
        tracing.flush()
    failures = len(response.get("batchItemFailures", []))
    for name, value in (*counts.items(), ("Failed", failures)):
        metrics.add_metric(name=f"{metric_prefix}{name}", unit=MetricUnit.Count, value=value)
    if failures:
        log.warning("batch had failed records", failed=failures, records=len(event.get("Records", [])))
    return response


class _DeadLetters:
    """Sends a record's body to the dead-letter queue of the queue it came from (read from its redrive policy)."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}

    def send(self, record: SQSRecord) -> None:
        client = make_client("sqs")
        source = record.event_source_arn
        if source not in self._urls:
            policy = client.get_queue_attributes(QueueUrl=_queue_url(source), AttributeNames=["RedrivePolicy"])
            target = json.loads(policy["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"]
            self._urls[source] = _queue_url(target)
        client.send_message(QueueUrl=self._urls[source], MessageBody=record.body)


def _queue_url(arn: str) -> str:
    """The URL of the queue ``arn:aws:sqs:<region>:<account>:<name>``."""
    _, _, _, region, account, name = arn.split(":", 5)
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


dead_letters = _DeadLetters()


class WorkerCredentials:
    """Temporary credentials of the worker role for sandboxed children, renewed before they expire.

    Args:
        role_arn: the worker role; without one the children get no credentials at all.
        client: an STS client (default: one from the default session).
        refresh_margin_seconds: renew this long before expiry.
    """

    def __init__(self, role_arn: str | None, *, client: Any = None, refresh_margin_seconds: float = 300.0) -> None:
        self.role_arn = role_arn
        self._client = client
        self._margin = refresh_margin_seconds
        self._lock = threading.Lock()
        self._env: dict[str, str] = {}
        self._expires = 0.0

    def __call__(self) -> Mapping[str, str]:
        """The environment to give a child: the role's credentials and the region."""
        if not self.role_arn:
            return {}
        with self._lock:
            if time.time() >= self._expires - self._margin:
                if self._client is None:
                    self._client = make_client("sts")
                creds = self._client.assume_role(RoleArn=self.role_arn, RoleSessionName="arbiter-worker")["Credentials"]
                region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")
                self._env = {
                    "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": creds["SessionToken"],
                    **({"AWS_REGION": region, "AWS_DEFAULT_REGION": region} if region else {}),
                }
                self._expires = creds["Expiration"].timestamp()
            return dict(self._env)


def worker_sandbox() -> tuple[SandboxPool, Mapping[str, str] | Callable[[], Mapping[str, str]]]:
    """Where a function runs sandboxed code, and the environment each run gets.

    The sandbox function when ``ARBITER_SANDBOX_FUNCTION`` names one (its own role is the worker role: nothing to
    hand over); otherwise a local pool whose children get the worker role's temporary credentials.
    """
    function = os.environ.get(ENV_SANDBOX_FUNCTION)
    if function:
        from wrapper.sandbox_function import LambdaInvoker, RemoteSandbox

        return RemoteSandbox(LambdaInvoker(function)), {}
    from wrapper.sandbox import SandboxPool

    return SandboxPool(size=1), WorkerCredentials(os.environ.get(ENV_WORKER_ROLE))


def _build_executor() -> Executor:
    from blackboard.adapters.aws import AwsConfig, aws_backends
    from wrapper.executor import Executor

    sandbox, env = worker_sandbox()
    return Executor(
        aws_backends(AwsConfig.from_env()),
        sandbox=sandbox,
        model_spec=os.environ.get(ENV_MODEL) or None,
        env=env,
        code_cache_dir=os.path.join(tempfile.gettempdir(), "arbiter-code"),
    )


def _close_executor(executor: Executor) -> None:
    executor.close()
    if executor.sandbox is not None:
        executor.sandbox.close()


_executor = PerEnvironment(_build_executor, _close_executor)


def executor() -> Executor:
    """The function's executor, built once per execution environment from the ``ARBITER_*`` variables."""
    return _executor.get()


def reset() -> None:
    """Drop the cached executor and stop its sandbox pool (a new configuration; tests)."""
    _executor.reset()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Execute an SQS batch of task messages; return the partial batch response."""
    run = executor()

    def execute(message: TaskMessage) -> object | None:
        time_limit = context.get_remaining_time_in_millis() / 1000 - REPORT_MARGIN_SECONDS
        return run.execute(message, time_limit=time_limit)

    # The completions nobody waits for (most of a wave) go out together, with the next one that must go at once or
    # when the batch ends: a tenth of a call each.
    with run.holding_completions():
        return process_sqs_batch(event, context, TaskMessage, execute, log=logger, metric_prefix="Tasks")
