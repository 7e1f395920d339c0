"""The deployment settings read from CDK context: defaults, strings from ``-c``, and clear refusals."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from tests.infra.conftest import INFRA_DIR

pytestmark = pytest.mark.infra


def config(**values: Any) -> Any:
    from arbiter_infra.config import DeploymentConfig

    return DeploymentConfig.from_mapping(values)


def test_defaults() -> None:
    from arbiter_infra.config import DEFAULT_INGRESS_PATTERNS

    c = config()
    assert c.stack_name == "arbiter-dev"
    assert c.fabricator_model_id == c.model_id
    assert c.approval == "auto"
    assert c.ingress_patterns == tuple(DEFAULT_INGRESS_PATTERNS)
    assert (c.arbiter_timeout_seconds, c.wrapper_timeout_seconds, c.fabricator_timeout_seconds) == (300, 120, 600)
    assert c.max_receive_count == 3
    assert c.deletion_protection is True and c.retain_data is True
    assert c.wrapper_reserved_concurrency is None
    # The sandbox function: shorter than the wrapper that waits for it, reserved for what its two callers can send.
    assert (c.sandbox_timeout_seconds, c.sandbox_memory_mb, c.sandbox_reserved_concurrency) == (90, 1024, 12)
    assert c.sandbox_network == "isolated"


def test_the_sandbox_concurrency_follows_its_callers_unless_set() -> None:
    assert config(wrapperMaxConcurrency="20").sandbox_reserved_concurrency == 22
    assert config(sandboxReservedConcurrency="5").sandbox_reserved_concurrency == 5
    assert config(wrapperTimeoutSeconds="60").sandbox_timeout_seconds == 45


def test_command_line_strings_are_parsed() -> None:
    c = config(
        maxReceiveCount="5",
        deletionProtection="false",
        approval="MANUAL",
        logLevel="debug",
        wrapperReservedConcurrency="25",
        arbiterReservedConcurrency="none",
        sandboxNetwork="Internet",
        ingressPatterns='[{"source": ["shop"]}]',
    )
    assert c.max_receive_count == 5
    assert c.deletion_protection is False
    assert c.approval == "manual"
    assert c.log_level == "DEBUG"
    assert c.wrapper_reserved_concurrency == 25
    assert c.arbiter_reserved_concurrency is None
    assert c.sandbox_network == "internet"
    assert c.ingress_patterns == ({"source": ["shop"]},)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"envName": "Prod!"}, "envName='Prod!'"),
        ({"approval": "sometimes"}, "expected one of auto, manual"),
        ({"wrapperTimeoutSeconds": "901"}, "wrapperTimeoutSeconds='901': expected a whole number from 1 to 900"),
        ({"maxReceiveCount": 2.5}, "maxReceiveCount=2.5"),
        ({"deletionProtection": "yes"}, "expected true or false"),
        ({"logRetentionDays": 10}, "CloudWatch Logs accepts only"),
        ({"ingressPatterns": "{not json"}, "ingressPatterns is not JSON"),
        ({"ingressPatterns": "[]"}, "expected a JSON list of EventBridge event patterns"),
        ({"ingressPatterns": '[{"source": "shop"}]'}, "ingressPatterns[0].source"),
        ({"alarmTopicArn": "oncall"}, "expected an ARN"),
        ({"modelId": " "}, "modelId=' ': expected a non-empty string"),
        ({"modelid": "x"}, "unknown context key(s) ['modelid']"),
        ({"sandboxNetwork": "vpc"}, "sandboxNetwork='vpc': expected one of isolated, internet"),
        ({"sandboxTimeoutSeconds": "120"}, "sandboxTimeoutSeconds=120: must be below wrapperTimeoutSeconds=120"),
    ],
)
def test_wrong_values_are_refused_with_the_key_and_what_it_accepts(values: dict[str, Any], message: str) -> None:
    from arbiter_infra.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        config(**values)
    assert message in str(caught.value)


def test_app_py_reports_a_bad_context_value_and_exits() -> None:
    result = subprocess.run(
        [sys.executable, "app.py", "-c", "approval=sometimes"],
        cwd=INFRA_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 1
    assert "app.py: approval='sometimes': expected one of auto, manual" in result.stderr


def test_app_py_refuses_arguments_it_does_not_know() -> None:
    result = subprocess.run(
        [sys.executable, "app.py", "--profile", "x"], cwd=INFRA_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "usage: app.py [-c key=value ...]" in result.stderr
