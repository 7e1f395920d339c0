"""AWS adapters: DynamoDB (blackboard, registry), S3 (code store), SQS (task queue), EventBridge (event bus).

Each takes an injected boto3 client (or session); see ``_clients``. :func:`aws_backends` opens the whole set from an
:class:`AwsConfig` (environment variables, flags or the CDK stack's outputs).
"""

from __future__ import annotations

from blackboard.adapters.aws.backends import aws_backends, fabrication_queue
from blackboard.adapters.aws.config import AwsConfig
from blackboard.adapters.aws.eventbridge_bus import EventBridgeBus, event_from_eventbridge
from blackboard.adapters.aws.s3_code_store import S3CodeStore
from blackboard.adapters.aws.sqs_queue import SqsTaskQueue

__all__ = [
    "AwsConfig",
    "EventBridgeBus",
    "S3CodeStore",
    "SqsTaskQueue",
    "aws_backends",
    "event_from_eventbridge",
    "fabrication_queue",
]
