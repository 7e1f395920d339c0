"""AWS adapters: DynamoDB (blackboard, registry), S3 (code store), SQS (task queue), EventBridge (event bus).

Each takes an injected boto3 client (or session); see ``_clients``. Importing this package does not import boto3.
"""

from __future__ import annotations

from blackboard.adapters.aws.eventbridge_bus import EventBridgeBus, event_from_eventbridge
from blackboard.adapters.aws.s3_code_store import S3CodeStore
from blackboard.adapters.aws.sqs_queue import SqsTaskQueue

__all__ = ["EventBridgeBus", "S3CodeStore", "SqsTaskQueue", "event_from_eventbridge"]
