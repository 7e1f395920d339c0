"""Build the CDK app: read the context, build the Lambda code, define the stack, add the cdk-nag checks."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from arbiter_infra.config import DeploymentConfig
from arbiter_infra.packaging import build_code, build_dependencies
from arbiter_infra.stack import ArbiterStack

__all__ = ["BUILD_DIR", "INFRA_DIR", "REPO_DIR", "build_app"]

INFRA_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = INFRA_DIR.parent
#: Where the Lambda code and dependency layer are built (git-ignored; reused while their inputs are unchanged).
BUILD_DIR = INFRA_DIR / ".build"


def build_app(overrides: Mapping[str, Any] | None = None, *, outdir: str | None = None) -> tuple[cdk.App, ArbiterStack]:
    """The app and its one stack.

    The context is ``cdk.json``'s (the CDK CLI passes the same, plus its ``-c`` values), then ``overrides``.

    Args:
        overrides: context values that win over every other source (``-c key=value`` of ``app.py``, tests).
        outdir: the cloud assembly directory (default: ``$CDK_OUTDIR``, else a temporary directory).
    """
    context = json.loads((INFRA_DIR / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    app = cdk.App(context=context, post_cli_context=dict(overrides or {}), outdir=outdir)
    config = DeploymentConfig.from_context(app.node.try_get_context)
    stack = ArbiterStack(
        app,
        config.stack_name,
        config=config,
        code=build_code(REPO_DIR, BUILD_DIR),
        dependencies=build_dependencies(REPO_DIR, BUILD_DIR),
        description=f"Arbiter ({config.env_name}): event-driven multi-agent orchestration",
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
