"""The deployment's settings, read from CDK context (``cdk.json``, ``-c key=value``) and checked in one place.

Every key is optional; :data:`DEFAULTS` holds the default of each. Values given on the command line arrive as
strings, values in ``cdk.json`` as JSON: both are accepted. A wrong value raises :class:`ConfigError` naming the key
and what it accepts, before any resource is defined.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULTS",
    "DEFAULT_INGRESS_PATTERNS",
    "EMBEDDING_MODEL_ID",
    "SYSTEM_SOURCES",
    "ConfigError",
    "DeploymentConfig",
]

#: The ``source`` of every event the system itself publishes (completions and orchestration results).
SYSTEM_SOURCES = ("arbiter", "arbiter.wrapper", "arbiter.fabricator")

#: Ingress by default: every event on the bus except the system's own (told apart by their source).
DEFAULT_INGRESS_PATTERNS: list[dict[str, Any]] = [{"source": [{"anything-but": list(SYSTEM_SOURCES)}]}]

#: The Titan embeddings model that ``ARBITER_MATCHING=bedrock`` calls (``wrapper.embeddings.BedrockEmbedder``).
EMBEDDING_MODEL_ID = "amazon.titan-embed-text-v2:0"

#: Every context key and its default.
DEFAULTS: dict[str, Any] = {
    "envName": "dev",
    "modelId": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    "fabricatorModelId": None,  # None: the same as modelId
    "approval": "auto",
    "ingressPatterns": DEFAULT_INGRESS_PATTERNS,
    "maxReceiveCount": 3,
    "arbiterTimeoutSeconds": 300,
    "wrapperTimeoutSeconds": 120,
    "fabricatorTimeoutSeconds": 600,
    "sandboxTimeoutSeconds": None,  # None: three quarters of wrapperTimeoutSeconds, which waits for it
    "arbiterMemoryMb": 1024,
    "wrapperMemoryMb": 1769,
    "fabricatorMemoryMb": 1769,
    "sandboxMemoryMb": 1024,
    "wrapperBatchSize": 1,
    "fabricatorBatchSize": 1,
    "wrapperMaxConcurrency": 10,
    "fabricatorMaxConcurrency": 2,
    "arbiterReservedConcurrency": None,  # None: draw from the account's unreserved pool
    "wrapperReservedConcurrency": None,
    "fabricatorReservedConcurrency": None,
    "sandboxReservedConcurrency": None,  # None: wrapperMaxConcurrency + fabricatorMaxConcurrency, its only callers
    "sandboxNetwork": "isolated",  # isolated: a VPC reaching only the Bedrock runtime; internet: Lambda's network
    "logLevel": "INFO",
    "logRetentionDays": 30,
    "deletionProtection": True,
    "removalPolicy": "retain",
    "noncurrentVersionDays": 30,
    "accessLogDays": 90,
    "alarmTopicArn": None,
}

_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The retention periods CloudWatch Logs accepts.
_RETENTION_DAYS = tuple(
    int(d) for d in "1 3 5 7 14 30 60 90 120 150 180 365 400 545 731 1096 1827 2192 2557 2922 3288 3653".split()
)
_LAMBDA_MAX_TIMEOUT = 900
# SQS caps a visibility timeout at 12 hours; the queues use six times their consumer's timeout.
_VISIBILITY_FACTOR = 6


class ConfigError(ValueError):
    """A context value is missing its expected type or range; the message names the key and what it accepts."""


@dataclass(frozen=True)
class DeploymentConfig:
    """The settings of one deployment (one stack), resolved from CDK context."""

    env_name: str
    model_id: str
    fabricator_model_id: str
    approval: str
    ingress_patterns: tuple[dict[str, Any], ...]
    max_receive_count: int
    arbiter_timeout_seconds: int
    wrapper_timeout_seconds: int
    fabricator_timeout_seconds: int
    sandbox_timeout_seconds: int
    arbiter_memory_mb: int
    wrapper_memory_mb: int
    fabricator_memory_mb: int
    sandbox_memory_mb: int
    wrapper_batch_size: int
    fabricator_batch_size: int
    wrapper_max_concurrency: int
    fabricator_max_concurrency: int
    arbiter_reserved_concurrency: int | None
    wrapper_reserved_concurrency: int | None
    fabricator_reserved_concurrency: int | None
    sandbox_reserved_concurrency: int
    sandbox_network: str
    log_level: str
    log_retention_days: int
    deletion_protection: bool
    retain_data: bool
    noncurrent_version_days: int
    access_log_days: int
    alarm_topic_arn: str | None

    @property
    def stack_name(self) -> str:
        """The CloudFormation stack name (``arbiter-<envName>``); the CLI finds the outputs under it."""
        return f"arbiter-{self.env_name}"

    @property
    def visibility_factor(self) -> int:
        """How many consumer timeouts a queue's visibility timeout spans."""
        return _VISIBILITY_FACTOR

    @classmethod
    def from_context(cls, get: Any) -> DeploymentConfig:
        """Read every key through ``get`` (``node.try_get_context``); missing keys take :data:`DEFAULTS`."""
        values = {key: _or_default(get(key), key) for key in DEFAULTS}
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> DeploymentConfig:
        """Build from a mapping of context keys (missing keys take :data:`DEFAULTS`) and validate every value."""
        unknown = sorted(set(values) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown context key(s) {unknown}; the keys are: {sorted(DEFAULTS)}")
        v = {key: _or_default(values.get(key), key) for key in DEFAULTS}
        env_name = _text(v, "envName")
        if not _ENV_NAME.match(env_name):
            raise ConfigError(
                f"envName={env_name!r}: use 1-20 lowercase letters, digits or '-', starting with a letter"
            )
        model_id = _text(v, "modelId")
        fabricator_model_id = _text(v, "fabricatorModelId") if v["fabricatorModelId"] is not None else model_id
        wrapper_timeout = _int(v, "wrapperTimeoutSeconds", 1, _LAMBDA_MAX_TIMEOUT)
        fabricator_timeout = _int(v, "fabricatorTimeoutSeconds", 1, _LAMBDA_MAX_TIMEOUT)
        sandbox_timeout = _optional_int(v, "sandboxTimeoutSeconds", 1, _LAMBDA_MAX_TIMEOUT) or max(
            1, wrapper_timeout * 3 // 4
        )
        if sandbox_timeout >= wrapper_timeout and wrapper_timeout > 1:
            raise ConfigError(
                f"sandboxTimeoutSeconds={sandbox_timeout}: must be below wrapperTimeoutSeconds={wrapper_timeout}, "
                "which waits for it"
            )
        wrapper_concurrency = _int(v, "wrapperMaxConcurrency", 2, 1000)
        fabricator_concurrency = _int(v, "fabricatorMaxConcurrency", 2, 1000)
        sandbox_concurrency = _optional_int(v, "sandboxReservedConcurrency", 1, 1000)
        return cls(
            env_name=env_name,
            model_id=model_id,
            fabricator_model_id=fabricator_model_id,
            approval=_choice(v, "approval", ("auto", "manual")),
            ingress_patterns=_patterns(v["ingressPatterns"]),
            max_receive_count=_int(v, "maxReceiveCount", 1, 1000),
            arbiter_timeout_seconds=_int(v, "arbiterTimeoutSeconds", 1, _LAMBDA_MAX_TIMEOUT),
            wrapper_timeout_seconds=wrapper_timeout,
            fabricator_timeout_seconds=fabricator_timeout,
            sandbox_timeout_seconds=sandbox_timeout,
            arbiter_memory_mb=_int(v, "arbiterMemoryMb", 128, 10240),
            wrapper_memory_mb=_int(v, "wrapperMemoryMb", 128, 10240),
            fabricator_memory_mb=_int(v, "fabricatorMemoryMb", 128, 10240),
            sandbox_memory_mb=_int(v, "sandboxMemoryMb", 128, 10240),
            wrapper_batch_size=_int(v, "wrapperBatchSize", 1, 10),
            fabricator_batch_size=_int(v, "fabricatorBatchSize", 1, 10),
            wrapper_max_concurrency=wrapper_concurrency,
            fabricator_max_concurrency=fabricator_concurrency,
            arbiter_reserved_concurrency=_optional_int(v, "arbiterReservedConcurrency", 1, 1000),
            wrapper_reserved_concurrency=_optional_int(v, "wrapperReservedConcurrency", 1, 1000),
            fabricator_reserved_concurrency=_optional_int(v, "fabricatorReservedConcurrency", 1, 1000),
            sandbox_reserved_concurrency=sandbox_concurrency or wrapper_concurrency + fabricator_concurrency,
            sandbox_network=_choice(v, "sandboxNetwork", ("isolated", "internet")),
            log_level=_choice(v, "logLevel", _LOG_LEVELS, upper=True),
            log_retention_days=_retention(v),
            deletion_protection=_bool(v, "deletionProtection"),
            retain_data=_choice(v, "removalPolicy", ("retain", "destroy")) == "retain",
            noncurrent_version_days=_int(v, "noncurrentVersionDays", 1, 3650),
            access_log_days=_int(v, "accessLogDays", 1, 3650),
            alarm_topic_arn=_optional_arn(v, "alarmTopicArn"),
        )


def _or_default(value: Any, key: str) -> Any:
    return DEFAULTS[key] if value is None else value


def _text(values: Mapping[str, Any], key: str) -> str:
    value = values[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}={value!r}: expected a non-empty string")
    return value.strip()


def _choice(values: Mapping[str, Any], key: str, allowed: tuple[str, ...], *, upper: bool = False) -> str:
    value = _text(values, key)
    value = value.upper() if upper else value.lower()
    if value not in allowed:
        raise ConfigError(f"{key}={values[key]!r}: expected one of {', '.join(allowed)}")
    return value


def _int(values: Mapping[str, Any], key: str, low: int, high: int) -> int:
    raw = values[key]
    try:
        if isinstance(raw, bool) or isinstance(raw, float):
            raise TypeError
        number = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={raw!r}: expected a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise ConfigError(f"{key}={raw!r}: expected a whole number from {low} to {high}")
    return number


def _optional_int(values: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    raw = values[key]
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
        return None
    return _int(values, key, low, high)


def _bool(values: Mapping[str, Any], key: str) -> bool:
    raw = values[key]
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise ConfigError(f"{key}={raw!r}: expected true or false")


def _retention(values: Mapping[str, Any]) -> int:
    days = _int(values, "logRetentionDays", 1, 3653)
    if days not in _RETENTION_DAYS:
        raise ConfigError(f"logRetentionDays={days}: CloudWatch Logs accepts only {list(_RETENTION_DAYS)}")
    return days


def _optional_arn(values: Mapping[str, Any], key: str) -> str | None:
    raw = values[key]
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not raw.startswith("arn:"):
        raise ConfigError(f"{key}={raw!r}: expected an ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
    return raw


def _patterns(raw: Any) -> tuple[dict[str, Any], ...]:
    """Ingress patterns: a JSON list of EventBridge event patterns (objects), as a list or a JSON string."""
    hint = 'expected a JSON list of EventBridge event patterns, e.g. [{"source": ["my.app"]}]'
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"ingressPatterns is not JSON ({exc}): {hint}") from None
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"ingressPatterns={raw!r}: {hint}")
    for index, pattern in enumerate(raw):
        if not isinstance(pattern, dict) or not pattern:
            raise ConfigError(f"ingressPatterns[{index}]={pattern!r}: each pattern must be a non-empty JSON object")
        for field, condition in pattern.items():
            if field != "detail" and not isinstance(condition, list):
                raise ConfigError(
                    f"ingressPatterns[{index}].{field}: EventBridge expects a list of values or filters, "
                    f"got {condition!r}"
                )
    return tuple(raw)
