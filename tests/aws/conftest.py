"""A deployed system on moto for the handler and end-to-end tests; the Lambda modules' caches reset around each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

import arbiter.aws_lambda
import fabricator.aws_lambda
import wrapper.aws_lambda
from arbiter.cli import register_agents_file
from arbiter.config import Deployment
from arbiter.runtime import LocalRuntime
from blackboard import Backends
from blackboard.adapters.aws import AwsConfig, aws_backends
from tests.aws.deployment import MotoDeployment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _reset() -> None:
    arbiter.aws_lambda.reset()
    wrapper.aws_lambda.reset()
    fabricator.aws_lambda.reset()


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoDeployment]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        deployed = MotoDeployment()
        for key, value in deployed.env.items():
            monkeypatch.setenv(key, value)
        _reset()
        try:
            yield deployed
        finally:
            _reset()


@pytest.fixture
def aws(deployment: MotoDeployment) -> Iterator[Backends]:
    """The deployment's adapters, as the CLI's ``--backend aws`` opens them."""
    backends = aws_backends(AwsConfig.from_env())
    yield backends
    backends.close()


def register_example(backends: Backends, example: str) -> list[str]:
    """Register an example's agents in the deployed registry, as ``arbiter --backend aws agents add`` would."""
    with LocalRuntime(start=False, deployment=Deployment(backends=backends)) as runtime:
        return register_agents_file(runtime, EXAMPLES / example / "agents.json")
