"""The Lambda functions (arbiter, wrapper, fabricator, sandbox), their roles, and the worker role.

Untrusted code (everything the Fabricator writes, every sandboxed agent) runs only in the *sandbox* function, whose
execution role is the worker role: it can invoke the configured Bedrock model and nothing else. The wrapper and the
Fabricator invoke it (``ARBITER_SANDBOX_FUNCTION``) and never run such code in their own environment, where their
roles can write the blackboard, the registry and the code bucket. By default it runs in an isolated VPC whose only
way out is the Bedrock runtime endpoint (:mod:`arbiter_infra.network`); ``sandboxNetwork=internet`` leaves it on
Lambda's own network. It has a small memory and timeout, and a reserved concurrency equal to what its two callers can
send at once.

Each function has its own role whose permissions come only from the grant helpers of the other constructs (the
function sees the role as immutable, so no construct can add to it behind the stack's back: the SQS event sources'
own grants are dropped and :meth:`Queues.grant_consume_tasks` grants exactly what the mapping needs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from aws_cdk import AssetHashType, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from arbiter_infra import bedrock
from arbiter_infra.config import EMBEDDING_MODEL_ID, DeploymentConfig
from arbiter_infra.network import SandboxNetwork
from arbiter_infra.packaging import BuiltAsset

__all__ = ["HANDLERS", "RUNTIME", "FunctionSpec", "Functions"]

#: The handler of each function (strings only: infra imports nothing from the library).
HANDLERS = {
    "arbiter": "arbiter.aws_lambda.handler",
    "wrapper": "wrapper.aws_lambda.handler",
    "fabricator": "fabricator.aws_lambda.handler",
    "sandbox": "wrapper.sandbox_function.handler",
}
RUNTIME = lambda_.Runtime.PYTHON_3_12
_ASSET_EXCLUDE = [".complete"]


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between the functions."""

    name: str
    timeout_seconds: int
    memory_mb: int
    reserved_concurrency: int | None
    description: str


class Functions(Construct):
    """The four functions on one dependency layer, with their log groups, roles and SQS event sources."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        code: BuiltAsset,
        dependencies: BuiltAsset,
        environment: dict[str, str],
        task_queue: sqs.IQueue,
        fabrication_queue: sqs.IQueue,
        failed_invocations: sqs.IQueue,
        sandbox_network: SandboxNetwork | None = None,
    ) -> None:
        """Define the functions.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            config: the deployment's settings.
            code: the built function code (the library's packages).
            dependencies: the built dependency layer.
            environment: the variables every function gets (tables, buckets, queues, bus, models, ...).
            task_queue: consumed by the wrapper.
            fabrication_queue: consumed by the Fabricator.
            failed_invocations: where arbiter invocations that failed after Lambda's retries go.
            sandbox_network: the VPC the sandbox function runs in; None: Lambda's own network.
        """
        super().__init__(scope, construct_id)
        self._config = config
        self.layer = lambda_.LayerVersion(
            self,
            "Dependencies",
            code=_asset(dependencies),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.X86_64],
            description="Arbiter's Python dependencies (core + aws extra) for CPython 3.12 on x86_64",
        )
        self._code = _asset(code)
        self.arbiter_role = self._role("Arbiter", "the Arbiter: plans, dispatches and coordinates orchestrations")
        self.wrapper_role = self._role("Wrapper", "the wrapper: runs worker agents from the task queue")
        self.fabricator_role = self._role("Fabricator", "the Fabricator: writes, validates and publishes agents")
        self.worker_role = iam.Role(
            self,
            "WorkerRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="The sandbox function, where generated agent code runs: invokes the configured Bedrock model "
            "and nothing else",
            max_session_duration=Duration.hours(1),
        )
        bedrock.grant_invoke(self, self.worker_role, config.model_id)
        bedrock.grant_invoke(self, self.arbiter_role, config.model_id)
        bedrock.grant_invoke(self, self.arbiter_role, EMBEDDING_MODEL_ID)
        bedrock.grant_invoke(self, self.fabricator_role, config.fabricator_model_id)
        # The Fabricator's reuse check asks the same matcher as the planner (ARBITER_MATCHING=bedrock).
        bedrock.grant_invoke(self, self.fabricator_role, EMBEDDING_MODEL_ID)

        # Its environment names nothing of the stack: the code, input and model spec come with each invocation.
        self.sandbox = self._function(
            FunctionSpec(
                "sandbox",
                config.sandbox_timeout_seconds,
                config.sandbox_memory_mb,
                config.sandbox_reserved_concurrency,
                "Arbiter sandbox: runs generated and sandboxed agent code under the worker role",
            ),
            self.worker_role,
            {},
            network=sandbox_network,
        )
        for role in (self.wrapper_role, self.fabricator_role):
            iam.Grant.add_to_principal(
                grantee=role, actions=["lambda:InvokeFunction"], resource_arns=[self.sandbox.function_arn]
            )
        worker_env = {"ARBITER_SANDBOX_FUNCTION": self.sandbox.function_name}
        self.arbiter = self._function(
            FunctionSpec(
                "arbiter",
                config.arbiter_timeout_seconds,
                config.arbiter_memory_mb,
                config.arbiter_reserved_concurrency,
                "Arbiter: ingress events, task completions and the scheduled sweep",
            ),
            self.arbiter_role,
            environment,
            dead_letter_queue=failed_invocations,
        )
        self.wrapper = self._function(
            FunctionSpec(
                "wrapper",
                config.wrapper_timeout_seconds,
                config.wrapper_memory_mb,
                config.wrapper_reserved_concurrency,
                "Arbiter wrapper: runs worker agents from the task queue",
            ),
            self.wrapper_role,
            {**environment, **worker_env},
        )
        self.fabricator = self._function(
            FunctionSpec(
                "fabricator",
                config.fabricator_timeout_seconds,
                config.fabricator_memory_mb,
                config.fabricator_reserved_concurrency,
                "Arbiter Fabricator: writes, validates and publishes new worker agents",
            ),
            self.fabricator_role,
            {**environment, **worker_env},
        )
        self.wrapper.add_event_source(
            sources.SqsEventSource(
                task_queue,
                batch_size=config.wrapper_batch_size,
                max_concurrency=config.wrapper_max_concurrency,
                report_batch_item_failures=True,
            )
        )
        self.fabricator.add_event_source(
            sources.SqsEventSource(
                fabrication_queue,
                batch_size=config.fabricator_batch_size,
                max_concurrency=config.fabricator_max_concurrency,
                report_batch_item_failures=True,
            )
        )

    @property
    def all(self) -> dict[str, lambda_.Function]:
        """The functions by name."""
        return {
            "arbiter": self.arbiter,
            "wrapper": self.wrapper,
            "fabricator": self.fabricator,
            "sandbox": self.sandbox,
        }

    def _role(self, name: str, purpose: str) -> iam.Role:
        return iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Lambda role of {purpose}",
        )

    def _function(
        self,
        spec: FunctionSpec,
        role: iam.Role,
        environment: dict[str, str],
        *,
        dead_letter_queue: sqs.IQueue | None = None,
        network: SandboxNetwork | None = None,
    ) -> lambda_.Function:
        config = self._config
        title = spec.name.capitalize()
        log_group = logs.LogGroup(
            self,
            f"{title}Logs",
            removal_policy=RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY,
        )
        # RetentionDays is an enum of names in Python; the config already checked the number against CloudWatch's.
        cast(logs.CfnLogGroup, log_group.node.default_child).retention_in_days = config.log_retention_days
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resource_arns=[log_group.log_group_arn],
        )
        function = lambda_.Function(
            self,
            title,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=HANDLERS[spec.name],
            code=self._code,
            layers=[self.layer],
            description=spec.description,
            timeout=Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            reserved_concurrent_executions=spec.reserved_concurrency,
            role=role.without_policy_updates(),
            log_group=log_group,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": spec.name,
                "POWERTOOLS_METRICS_NAMESPACE": "Arbiter",
                "POWERTOOLS_LOG_LEVEL": config.log_level,
            },
            dead_letter_queue=dead_letter_queue,
            retry_attempts=2 if dead_letter_queue is not None else None,
            max_event_age=Duration.hours(1) if dead_letter_queue is not None else None,
            vpc=network.vpc if network is not None else None,
            vpc_subnets=network.subnets if network is not None else None,
            security_groups=[network.security_group] if network is not None else None,
        )
        if network is not None:
            # The role is immutable to the function, so its VPC permissions come from here, created before it.
            function.node.add_dependency(network.allow_network_interfaces(role))
        return function


def _asset(built: BuiltAsset) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(built.path), asset_hash=built.hash, asset_hash_type=AssetHashType.CUSTOM, exclude=_ASSET_EXCLUDE
    )
