"""cdk-nag: every AwsSolutions finding this stack acknowledges, each where it arises and with its reason.

cdk-nag 3 reports each finding as ``AwsSolutions::<rule>[<finding>]`` and acknowledges nothing in bulk: a new
wildcard or a new function shows up as a finding that fails synthesis until it is fixed or acknowledged here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct

from arbiter_infra import bedrock

if TYPE_CHECKING:
    from arbiter_infra.stack import ArbiterStack

__all__ = ["NagAcknowledgment", "acknowledge_findings", "acknowledgments"]

_PACK = "AwsSolutions"

_RUNTIME_REASON = (
    "Python 3.12 is the runtime the function code and its dependency layer are built for (CPython 3.12 wheels); "
    "a newer runtime is a deliberate change of the packaging target, not a setting."
)
_OBJECTS_REASON = (
    "Objects are keyed by SHA-256 or by orchestration and task id, known only at run time; the grant is limited "
    "to this one bucket and to the object actions the function's code calls."
)
_PROFILE_REASON = (
    "A cross-region inference profile routes each request to the foundation model in any region of its "
    "geography, so the model's ARN has a region wildcard; the statement names this one model and applies only "
    "through the configured profile (condition bedrock:InferenceProfileArn)."
)

_INTERFACES_REASON = (
    "Lambda creates the sandbox function's network interfaces with its execution role, and their ids do not exist "
    "before; creation is also limited to the isolated subnets and the sandbox security group, and the VPC has no "
    "route to the EC2 API, so code running under the role cannot call it."
)
_DESCRIBE_REASON = (
    "EC2 Describe actions support no resource-level permissions (only '*'); Lambda calls them with the execution "
    "role to attach the sandbox function to its VPC, and the VPC has no route to the EC2 API for code under the role."
)


@dataclass(frozen=True)
class NagAcknowledgment:
    """One acknowledged finding: where (construct path), which (rule and finding) and why."""

    path: str
    rule: str
    reason: str


def acknowledgments(stack: ArbiterStack) -> list[tuple[IConstruct, NagAcknowledgment]]:
    """Every acknowledgment of the stack, with the construct it applies to."""
    found: list[tuple[IConstruct, NagAcknowledgment]] = []

    def add(scope: IConstruct, rule: str, reason: str) -> None:
        found.append((scope, NagAcknowledgment(scope.node.path, rule, reason)))

    functions = stack.functions
    for function in functions.all.values():
        add(function, "AwsSolutions-L1", _RUNTIME_REASON)

    code = _logical_id(stack, stack.buckets.code)
    payload = _logical_id(stack, stack.buckets.payload)
    readers_of_code = (functions.arbiter_role, functions.wrapper_role, functions.fabricator_role)
    for role in readers_of_code:
        add(role, f"AwsSolutions-IAM5[Resource::<{code}.Arn>/*]", _OBJECTS_REASON)
        add(role, f"AwsSolutions-IAM5[Resource::<{payload}.Arn>/*]", _OBJECTS_REASON)

    models = {
        functions.arbiter_role: stack.config.model_id,
        functions.fabricator_role: stack.config.fabricator_model_id,
        functions.worker_role: stack.config.model_id,
    }
    for role, model_id in models.items():
        base = bedrock.cross_region_base_model(model_id)
        if base is not None:
            arn = f"arn:<AWS::Partition>:bedrock:*::foundation-model/{base}"
            add(role, f"AwsSolutions-IAM5[Resource::{arn}]", _PROFILE_REASON)

    network = stack.sandbox_network
    if network is not None and network.network_interfaces is not None:
        interfaces = "arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:network-interface/*"
        add(network.network_interfaces, f"AwsSolutions-IAM5[Resource::{interfaces}]", _INTERFACES_REASON)
        add(network.network_interfaces, "AwsSolutions-IAM5[Resource::*]", _DESCRIBE_REASON)
    return found


def acknowledge_findings(stack: ArbiterStack) -> None:
    """Record every acknowledgment on its construct."""
    for scope, ack in acknowledgments(stack):
        Validations.of(scope).acknowledge(Acknowledgment(id=f"{_PACK}::{ack.rule}", reason=ack.reason))


def _logical_id(stack: Stack, construct: IConstruct) -> str:
    return cast(str, stack.resolve(stack.get_logical_id(cast(CfnResource, construct.node.default_child))))
