"""boto3 clients for the AWS adapters: injected client > injected session > the default session.

Every client shares one botocore ``Config`` with the ``standard`` retry mode (throttling and transient errors are
retried by botocore with backoff). Application-level conflicts (optimistic locks) are retried by the adapters
themselves; conditional-check failures are never retried by botocore.
"""

from __future__ import annotations

from typing import Any

from blackboard.exceptions import ConfigurationError

__all__ = ["client_config", "make_client"]

#: Attempts botocore makes for throttling and transient errors before an adapter sees the error.
DEFAULT_MAX_ATTEMPTS = 5


def client_config(*, max_attempts: int = DEFAULT_MAX_ATTEMPTS, **overrides: Any) -> Any:
    """The shared botocore ``Config``: standard retries, connect/read timeouts that never hang a loop."""
    try:
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError("the AWS backends need boto3: pip install 'arbiter-agents[aws]'") from exc
    settings: dict[str, Any] = {
        "retries": {"mode": "standard", "total_max_attempts": max_attempts},
        "connect_timeout": 5,
        "read_timeout": 30,
        "user_agent_extra": "arbiter",
    }
    settings.update(overrides)
    return Config(**settings)


def make_client(service: str, *, client: Any = None, session: Any = None, config: Any = None) -> Any:
    """Return ``client`` if given, else a client for ``service`` from ``session`` (else the default session)."""
    if client is not None:
        return client
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError("the AWS backends need boto3: pip install 'arbiter-agents[aws]'") from exc
    factory = session if session is not None else boto3.session.Session()
    return factory.client(service, config=config if config is not None else client_config())
