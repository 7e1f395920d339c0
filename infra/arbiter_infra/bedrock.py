"""IAM for Amazon Bedrock models: the ARNs a model id or inference profile id resolves to."""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

__all__ = ["GEOGRAPHY_PREFIXES", "INVOKE_ACTIONS", "cross_region_base_model", "grant_invoke"]

#: Prefixes of cross-region (system-defined) inference profile ids, e.g. ``us.anthropic.claude-...``.
GEOGRAPHY_PREFIXES = ("us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "ca.", "global.")
#: Converse is authorized by InvokeModel, ConverseStream by InvokeModelWithResponseStream.
INVOKE_ACTIONS = ("bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream")


def grant_invoke(scope: Construct, grantee: iam.IGrantable, model_id: str) -> None:
    """Let ``grantee`` invoke ``model_id``: a foundation model id, a cross-region inference profile id or an ARN.

    A cross-region inference profile routes each request to the foundation model in one of its geography's regions,
    so the model is granted in every region (``bedrock:*::foundation-model/ID``), but only when called through
    that profile (condition ``bedrock:InferenceProfileArn``).
    """
    stack = Stack.of(scope)
    actions = list(INVOKE_ACTIONS)
    if model_id.startswith("arn:"):
        iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=[model_id])
        return
    base = cross_region_base_model(model_id)
    if base is None:
        arn = f"arn:{Aws.PARTITION}:bedrock:{stack.region}::foundation-model/{model_id}"
        iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=[arn])
        return
    profile = f"arn:{Aws.PARTITION}:bedrock:{stack.region}:{stack.account}:inference-profile/{model_id}"
    iam.Grant.add_to_principal(grantee=grantee, actions=actions, resource_arns=[profile])
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=actions,
            resources=[f"arn:{Aws.PARTITION}:bedrock:*::foundation-model/{base}"],
            conditions={"StringEquals": {"bedrock:InferenceProfileArn": profile}},
        )
    )


def cross_region_base_model(model_id: str) -> str | None:
    """The foundation model id behind a cross-region inference profile id (``us.x`` -> ``x``), else ``None``."""
    prefix = next((p for p in GEOGRAPHY_PREFIXES if model_id.startswith(p)), None)
    return None if prefix is None else model_id[len(prefix) :]
