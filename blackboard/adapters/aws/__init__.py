"""AWS adapters: DynamoDB (blackboard, registry), S3 (code store), SQS (task queue), EventBridge (event bus).

Each takes an injected boto3 client (or session); see ``_clients``. Importing this package does not import boto3:
the adapters are loaded on first use (``from blackboard.adapters.aws import DynamoDBBlackboard``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blackboard.adapters.aws.dynamodb_blackboard import DynamoDBBlackboard
    from blackboard.adapters.aws.dynamodb_registry import DynamoDBRegistry
    from blackboard.adapters.aws.exceptions import ContentionError, PayloadTooLargeError, TransactionTooLargeError

__all__ = [
    "ContentionError",
    "DynamoDBBlackboard",
    "DynamoDBRegistry",
    "PayloadTooLargeError",
    "TransactionTooLargeError",
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
