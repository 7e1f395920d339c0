"""The Arbiter stack: composes the resource groups, wires each function's grants, and declares the outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from constructs import Construct

from arbiter_infra.buckets import Buckets
from arbiter_infra.config import DeploymentConfig
from arbiter_infra.functions import Functions
from arbiter_infra.monitoring import Monitoring
from arbiter_infra.nag import acknowledge_findings
from arbiter_infra.network import SandboxNetwork
from arbiter_infra.packaging import BuiltAsset
from arbiter_infra.queues import Queues
from arbiter_infra.routing import EventRouting
from arbiter_infra.tables import Tables

__all__ = ["OUTPUT_KEYS", "ArbiterStack"]

#: The stack outputs the CLI's ``--backend aws`` reads.
OUTPUT_KEYS = (
    "BusName",
    "BlackboardTableName",
    "RegistryTableName",
    "CodeBucketName",
    "PayloadBucketName",
    "TaskQueueUrl",
    "FabricationQueueUrl",
    "ResultsQueueUrl",
)


class ArbiterStack(Stack):
    """Everything one deployment of Arbiter needs on AWS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        code: BuiltAsset,
        dependencies: BuiltAsset,
        **kwargs: Any,
    ) -> None:
        """Define the stack.

        Args:
            scope: the app.
            construct_id: the stack's name.
            config: the deployment's settings.
            code: the built function code.
            dependencies: the built dependency layer.
            **kwargs: passed to ``Stack`` (``env``, ``description``, ...).
        """
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.tables = Tables(
            self, "Tables", deletion_protection=config.deletion_protection, retain_data=config.retain_data
        )
        self.buckets = Buckets(
            self,
            "Buckets",
            noncurrent_version_days=config.noncurrent_version_days,
            access_log_days=config.access_log_days,
            retain_data=config.retain_data,
        )
        self.queues = Queues(
            self,
            "Queues",
            task_visibility=Duration.seconds(config.visibility_factor * config.wrapper_timeout_seconds),
            fabrication_visibility=Duration.seconds(config.visibility_factor * config.fabricator_timeout_seconds),
            max_receive_count=config.max_receive_count,
        )
        bus_name = config.stack_name
        environment = {
            "ARBITER_BLACKBOARD_TABLE": self.tables.blackboard.table_name,
            "ARBITER_REGISTRY_TABLE": self.tables.registry.table_name,
            "ARBITER_CODE_BUCKET": self.buckets.code.bucket_name,
            "ARBITER_PAYLOAD_BUCKET": self.buckets.payload.bucket_name,
            "ARBITER_TASK_QUEUE_URL": self.queues.task.queue_url,
            "ARBITER_FABRICATION_QUEUE_URL": self.queues.fabrication.queue_url,
            "ARBITER_BUS_NAME": bus_name,
            "ARBITER_MODEL": f"bedrock:{config.model_id}",
            "ARBITER_FABRICATOR_MODEL": f"bedrock:{config.fabricator_model_id}",
            "ARBITER_APPROVAL": config.approval,
            "ARBITER_MATCHING": "bedrock",
        }
        self.sandbox_network = (
            SandboxNetwork(
                self,
                "SandboxNetwork",
                log_retention_days=config.log_retention_days,
                retain_data=config.retain_data,
            )
            if config.sandbox_network == "isolated"
            else None
        )
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            code=code,
            dependencies=dependencies,
            environment=environment,
            task_queue=self.queues.task,
            fabrication_queue=self.queues.fabrication,
            failed_invocations=self.queues.events_dlq,
            sandbox_network=self.sandbox_network,
        )
        self.routing = EventRouting(
            self,
            "Routing",
            bus_name=bus_name,
            ingress_patterns=config.ingress_patterns,
            arbiter=self.functions.arbiter,
            results=self.queues.results,
            dead_letters=self.queues.events_dlq,
        )
        self._grant()
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            dead_letter_queues=self.queues.dead_letter_queues,
            functions=self.functions.all,
            task_queue=self.queues.task,
            alarm_topic_arn=config.alarm_topic_arn,
        )
        self._outputs()
        acknowledge_findings(self)

    def _grant(self) -> None:
        """Exactly what each function's code calls, on the specific resources."""
        tables, buckets, queues, routing = self.tables, self.buckets, self.queues, self.routing
        arbiter = self.functions.arbiter_role
        tables.grant_blackboard_read_write(arbiter)
        tables.grant_registry_read(arbiter)
        tables.grant_registry_update(arbiter)
        buckets.grant_payload_read_write(arbiter)
        buckets.grant_code_read(arbiter)
        queues.grant_dispatch(arbiter)
        queues.grant_events_dlq_send(arbiter)
        routing.grant_put_events(arbiter)

        wrapper = self.functions.wrapper_role
        tables.grant_blackboard_read_write(wrapper)
        tables.grant_registry_read(wrapper)
        buckets.grant_code_read(wrapper)
        buckets.grant_payload_read_write(wrapper)
        queues.grant_consume_tasks(wrapper)
        routing.grant_put_events(wrapper)

        fabricator = self.functions.fabricator_role
        tables.grant_blackboard_read_write(fabricator)
        tables.grant_registry_read(fabricator)
        tables.grant_registry_publish(fabricator)
        buckets.grant_code_read(fabricator)
        buckets.grant_code_write(fabricator)
        buckets.grant_payload_read_write(fabricator)
        queues.grant_consume_fabrications(fabricator)
        routing.grant_put_events(fabricator)
        routing.reserve_sources([arbiter, wrapper, fabricator])

    def _outputs(self) -> None:
        values = {
            "BusName": (self.routing.bus.event_bus_name, "The custom event bus: publish events here"),
            "BlackboardTableName": (self.tables.blackboard.table_name, "Orchestrations, tasks, waves and notes"),
            "RegistryTableName": (self.tables.registry.table_name, "Agent manifests"),
            "CodeBucketName": (self.buckets.code.bucket_name, "Agent code and validation reports by SHA-256"),
            "PayloadBucketName": (self.buckets.payload.bucket_name, "Large values offloaded from DynamoDB"),
            "TaskQueueUrl": (self.queues.task.queue_url, "Task messages for the wrapper"),
            "FabricationQueueUrl": (self.queues.fabrication.queue_url, "Fabrication requests for the Fabricator"),
            "ResultsQueueUrl": (self.queues.results.queue_url, "orchestration.completed|failed events, to poll"),
        }
        for key in OUTPUT_KEYS:
            value, description = values[key]
            CfnOutput(self, key, value=value, description=description)
