"""The Arbiter CDK app: one construct per resource group, composed by :class:`ArbiterStack`."""

from __future__ import annotations

from arbiter_infra.application import build_app
from arbiter_infra.config import ConfigError, DeploymentConfig
from arbiter_infra.stack import OUTPUT_KEYS, ArbiterStack

__all__ = ["OUTPUT_KEYS", "ArbiterStack", "ConfigError", "DeploymentConfig", "build_app"]
