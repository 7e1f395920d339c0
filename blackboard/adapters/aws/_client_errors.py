"""botocore failures turned into blackboard errors that say what to do.

botocore has already retried throttling and transient errors (standard mode, see ``_clients``) when an adapter sees
one, so what reaches here is final: throttling and server faults become :class:`StoreUnavailableError` (retryable,
try again later); other client faults (a missing bucket or queue, denied access, a bad parameter) become
:class:`ConfigurationError` (fix the setup).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blackboard.exceptions import BlackboardError, ConfigurationError, StoreUnavailableError

__all__ = ["THROTTLING_CODES", "error_code", "to_blackboard_error", "translated"]

#: Error codes of throttling across S3, SQS and EventBridge (and their HTTP-status forms).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "KMS.ThrottlingException",
        "503",
        "429",
    }
)


def error_code(exc: Any) -> str:
    """The ``Error.Code`` of a botocore ``ClientError`` (``""`` if it has none)."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(exc: Any) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _attempts(exc: Any) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) + 1


def to_blackboard_error(action: str, exc: Exception) -> BlackboardError:
    """The blackboard error for a final botocore failure of ``action`` (e.g. ``"S3 GetObject s3://b/k"``)."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return StoreUnavailableError(f"{action} failed: {exc}. Check the network and the endpoint, then retry.")
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "") or str(exc)
    status = _status(exc)
    if code in THROTTLING_CODES or status == 429:
        return StoreUnavailableError(
            f"{action} was throttled ({code}) after {_attempts(exc)} attempts. Retry later, spread the load, or"
            " raise the service quota."
        )
    if status >= 500 or status == 0:
        return StoreUnavailableError(f"{action} failed on the AWS side ({code}: {message}); retry later.")
    return ConfigurationError(
        f"{action} was refused ({code}: {message}). Check the resource name, the region and the IAM permissions."
    )


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Raise botocore failures inside the block as blackboard errors naming ``action``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise to_blackboard_error(action, exc) from exc
