"""Where the AWS resources are: from flags, from ``ARBITER_*`` environment variables, or from the CDK stack outputs.

The Lambda functions get the environment variables from the stack; the CLI's ``--backend aws`` takes flags, the
environment or ``--stack NAME`` (CloudFormation ``DescribeStacks`` outputs), in that order of precedence.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from blackboard.adapters.aws._clients import make_client
from blackboard.exceptions import ConfigurationError

__all__ = ["ENV_VARS", "STACK_OUTPUTS", "AwsConfig"]

#: The environment variable of each setting (the stack sets them on every function).
ENV_VARS: dict[str, str] = {
    "blackboard_table": "ARBITER_BLACKBOARD_TABLE",
    "registry_table": "ARBITER_REGISTRY_TABLE",
    "code_bucket": "ARBITER_CODE_BUCKET",
    "payload_bucket": "ARBITER_PAYLOAD_BUCKET",
    "task_queue_url": "ARBITER_TASK_QUEUE_URL",
    "fabrication_queue_url": "ARBITER_FABRICATION_QUEUE_URL",
    "bus_name": "ARBITER_BUS_NAME",
}

#: The CloudFormation output key of each setting (``infra/`` declares them).
STACK_OUTPUTS: dict[str, str] = {
    "blackboard_table": "BlackboardTableName",
    "registry_table": "RegistryTableName",
    "code_bucket": "CodeBucketName",
    "payload_bucket": "PayloadBucketName",
    "task_queue_url": "TaskQueueUrl",
    "fabrication_queue_url": "FabricationQueueUrl",
    "bus_name": "BusName",
}


@dataclass(frozen=True)
class AwsConfig:
    """The names of the deployed resources. Empty strings mean "not set"."""

    blackboard_table: str = ""
    registry_table: str = ""
    code_bucket: str = ""
    payload_bucket: str = ""
    task_queue_url: str = ""
    fabrication_queue_url: str = ""
    bus_name: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AwsConfig:
        """Read the ``ARBITER_*`` variables (see ``ENV_VARS``)."""
        env = os.environ if environ is None else environ
        return cls(**{name: env.get(var, "") for name, var in ENV_VARS.items()})

    @classmethod
    def from_stack(cls, stack_name: str, *, client: Any = None, session: Any = None) -> AwsConfig:
        """Read the outputs of a deployed stack.

        Raises:
            ConfigurationError: the stack does not exist or cannot be read.
        """
        cloudformation = make_client("cloudformation", client=client, session=session)
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except Exception as exc:  # botocore's ClientError and connection errors alike
            raise ConfigurationError(f"cannot read the outputs of the stack {stack_name!r}: {exc}") from exc
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])} if stacks else {}
        return cls(**{name: outputs.get(key, "") for name, key in STACK_OUTPUTS.items()})

    def merged(self, other: AwsConfig) -> AwsConfig:
        """This config with its empty settings filled from ``other``."""
        return replace(self, **{f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)})

    def require(self, *names: str) -> AwsConfig:
        """Return self if every named setting is set (all of them when none are named).

        Raises:
            ConfigurationError: naming each missing setting with its variable and stack output.
        """
        wanted = names or tuple(f.name for f in fields(self))
        missing = [n for n in wanted if not getattr(self, n)]
        if missing:
            how = ", ".join(f"{ENV_VARS[n]} (stack output {STACK_OUTPUTS[n]})" for n in missing)
            raise ConfigurationError(
                f"the AWS backend is not configured: set {how}, or name the deployed stack with --stack / ARBITER_STACK"
            )
        return self
