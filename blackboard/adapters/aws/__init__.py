"""AWS adapters: DynamoDB (blackboard, registry), S3 (code store), SQS (task queue), EventBridge (event bus).

Each takes an injected boto3 client (or session); see ``_clients``. :func:`aws_backends` opens the whole set from an
:class:`AwsConfig` (environment variables, flags or the CDK stack's outputs). Importing this package does not import
boto3; the DynamoDB adapters are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from blackboard.adapters.aws.backends import aws_backends, fabrication_queue
from blackboard.adapters.aws.config import AwsConfig
from blackboard.adapters.aws.eventbridge_bus import EventBridgeBus, event_from_eventbridge
from blackboard.adapters.aws.s3_code_store import S3CodeStore
from blackboard.adapters.aws.sqs_queue import SqsTaskQueue

if TYPE_CHECKING:
    from blackboard.adapters.aws.dynamodb_blackboard import DynamoDBBlackboard
    from blackboard.adapters.aws.dynamodb_registry import DynamoDBRegistry
    from blackboard.adapters.aws.exceptions import ContentionError, PayloadTooLargeError, TransactionTooLargeError

__all__ = [
    "AwsConfig",
    "ContentionError",
    "DynamoDBBlackboard",
    "DynamoDBRegistry",
    "EventBridgeBus",
    "PayloadTooLargeError",
    "S3CodeStore",
    "SqsTaskQueue",
    "TransactionTooLargeError",
    "aws_backends",
    "event_from_eventbridge",
    "fabrication_queue",
]

_LAZY = {
    "DynamoDBBlackboard": "blackboard.adapters.aws.dynamodb_blackboard",
    "DynamoDBRegistry": "blackboard.adapters.aws.dynamodb_registry",
    "ContentionError": "blackboard.adapters.aws.exceptions",
    "PayloadTooLargeError": "blackboard.adapters.aws.exceptions",
    "TransactionTooLargeError": "blackboard.adapters.aws.exceptions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
