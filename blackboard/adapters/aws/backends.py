"""The AWS set of adapters: DynamoDB blackboard and registry, S3 code and payload stores, SQS, EventBridge."""

from __future__ import annotations

from typing import Any

from blackboard.adapters.aws._clients import client_config
from blackboard.adapters.aws.config import AwsConfig
from blackboard.backends import Backends
from blackboard.ports import TaskQueue

__all__ = ["aws_backends", "fabrication_queue"]


def aws_backends(config: AwsConfig, *, session: Any = None, max_attempts: int | None = None) -> Backends:
    """Open the deployed resources named by ``config`` (every setting but the fabrication queue is required).

    Args:
        config: the resource names (``AwsConfig.from_env()``, ``AwsConfig.from_stack(...)``).
        session: a boto3 session to make the clients with (default: the default session).
        max_attempts: botocore's attempts per call for throttling and transient errors (default: the shared config).
    """
    from blackboard.adapters.aws.dynamodb_blackboard import DynamoDBBlackboard
    from blackboard.adapters.aws.dynamodb_registry import DynamoDBRegistry
    from blackboard.adapters.aws.eventbridge_bus import EventBridgeBus
    from blackboard.adapters.aws.s3_code_store import S3CodeStore
    from blackboard.adapters.aws.sqs_queue import SqsTaskQueue

    config.require("blackboard_table", "registry_table", "code_bucket", "payload_bucket", "task_queue_url", "bus_name")
    clients = _Clients(session, max_attempts)
    payloads = S3CodeStore(config.payload_bucket, prefix="payloads/", client=clients("s3"))
    return Backends(
        DynamoDBBlackboard(config.blackboard_table, client=clients("dynamodb"), payloads=payloads),
        DynamoDBRegistry(config.registry_table, client=clients("dynamodb")),
        S3CodeStore(config.code_bucket, client=clients("s3")),
        SqsTaskQueue(config.task_queue_url, client=clients("sqs")),
        EventBridgeBus(config.bus_name, client=clients("events")),
        payloads=payloads,
    )


def fabrication_queue(config: AwsConfig, *, session: Any = None) -> TaskQueue:
    """The Fabricator's SQS queue named by ``config``."""
    from blackboard.adapters.aws.sqs_queue import SqsTaskQueue

    config.require("fabrication_queue_url")
    return SqsTaskQueue(config.fabrication_queue_url, client=_Clients(session, None)("sqs"))


class _Clients:
    """One client per service, all from one session and the shared botocore config."""

    def __init__(self, session: Any, max_attempts: int | None) -> None:
        if session is None:
            import boto3

            session = boto3.session.Session()
        self._session = session
        self._config = client_config() if max_attempts is None else client_config(max_attempts=max_attempts)
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._session.client(service, config=self._config)
        return self._made[service]
