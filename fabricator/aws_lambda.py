"""Lambda entry point of the Fabricator: an SQS batch of fabrication requests, failures reported per record.

Handler: ``fabricator.aws_lambda.handler``, fed by the fabrication queue with ``ReportBatchItemFailures``. Each
request is claimed conditionally (a duplicate delivery does nothing), fabricated, validated in the sandbox and
published; the result is written and the completion emitted exactly as the wrapper does for any task.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from blackboard import FabricationRequest
from wrapper.aws_lambda import (
    PerEnvironment,
    lambda_logger,
    lambda_metrics,
    process_sqs_batch,
    worker_sandbox,
)
from wrapper.constants import ENV_MODEL

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from fabricator.worker import FabricationWorker

__all__ = ["ENV_APPROVAL", "ENV_FABRICATOR_MODEL", "handler", "reset"]

#: The model the Fabricator writes with (default: ``ARBITER_MODEL``).
ENV_FABRICATOR_MODEL = "ARBITER_FABRICATOR_MODEL"
#: ``manual``: new agents wait in ``pending_approval`` until a person approves them; ``auto`` (default): active.
ENV_APPROVAL = "ARBITER_APPROVAL"

logger = lambda_logger("arbiter-fabricator")
metrics = lambda_metrics()


def _build_worker() -> FabricationWorker:
    from blackboard.adapters.aws import AwsConfig, aws_backends
    from fabricator.fabricator import Fabricator
    from fabricator.worker import FabricationWorker
    from wrapper.executor import Executor
    from wrapper.matching import matcher_for
    from wrapper.models import resolve_model

    backends = aws_backends(AwsConfig.from_env())
    pool, env = worker_sandbox()  # the validation samples run where every other untrusted run does
    worker_model = os.environ.get(ENV_MODEL) or None
    fabricator = Fabricator(
        backends,
        resolve_model(os.environ.get(ENV_FABRICATOR_MODEL) or worker_model),
        pool,
        model_spec=worker_model,
        approval=os.environ.get(ENV_APPROVAL, "auto") == "manual",
        matcher=matcher_for(backends.registry, None),
    )
    return FabricationWorker(fabricator, Executor(backends, sandbox=pool, env=env))


def _close_worker(worker: FabricationWorker) -> None:
    worker.executor.close()
    worker.fabricator.sandbox.close()


_worker = PerEnvironment(_build_worker, _close_worker)


def worker() -> FabricationWorker:
    """The function's fabrication worker, built once per execution environment from the ``ARBITER_*`` variables."""
    return _worker.get()


def reset() -> None:
    """Drop the cached worker and stop its sandbox pool (a new configuration; tests)."""
    _worker.reset()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Fabricate for an SQS batch of requests; return the partial batch response."""
    run = worker()
    return process_sqs_batch(event, context, FabricationRequest, run.handle, log=logger, metric_prefix="Fabrications")
