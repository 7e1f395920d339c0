"""AWS adapters: DynamoDB (blackboard, registry), S3 (code store), SQS (task queue), EventBridge (event bus).

Each takes an injected boto3 client (or session); see ``_clients``. Importing this package does not import boto3.
"""

from __future__ import annotations

__all__: list[str] = []
