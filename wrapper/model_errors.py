"""Which model-provider errors are worth another call: throttling, timeouts, 5xx answers and broken connections.

:func:`transient_model_error` looks at the error's type and attributes only (a ``retryable`` flag, a botocore error
code or HTTP status, an HTTP status code, the exception class), never at its message: providers word messages as
they like. It walks the error's ``__cause__`` / ``__context__`` chain, so an error that a provider or a caller
wrapped is classified by what it wraps; the first error that says something decides.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["TRANSIENT_ERROR_CODES", "TRANSIENT_STATUS_CODES", "transient_model_error"]

#: AWS error codes (Bedrock's among them) that mean "not now": the same call may succeed later.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceQuotaExceededException",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "InternalServerException",
        "InternalFailure",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "ModelStreamErrorException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
#: HTTP statuses that mean "not now": too many requests, and the server-side failures.
TRANSIENT_STATUS_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Exception classes of provider SDKs that are not installed everywhere, by module prefix and class name.
_TRANSIENT_CLASSES = {
    ("openai", "APIConnectionError"),
    ("openai", "APITimeoutError"),
    ("anthropic", "APIConnectionError"),
    ("anthropic", "APITimeoutError"),
}


def transient_model_error(error: BaseException) -> bool:
    """Whether ``error``, raised by a model call, may pass if the same call is made again later.

    Transient: Strands' ``ModelThrottledException``; an error with ``retryable=True``; a botocore error whose code is
    in :data:`TRANSIENT_ERROR_CODES` or whose HTTP status is in :data:`TRANSIENT_STATUS_CODES`; botocore's and
    httpx's connection and timeout errors; an error with such a ``status_code`` (OpenAI, Ollama); ``TimeoutError``
    and ``ConnectionError``. Everything else (a refused request, a bad model id, a context overflow, a bug) is
    permanent.
    """
    for link in _chain(error):
        verdict = _classify(link)
        if verdict is not None:
            return verdict
    return False


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _classify(error: BaseException) -> bool | None:
    """True or False when ``error`` itself decides, ``None`` when only what it wraps can."""
    from strands.types.exceptions import ContextWindowOverflowException, ModelThrottledException

    if isinstance(error, ModelThrottledException):
        return True
    if isinstance(error, ContextWindowOverflowException):
        return False
    flag = getattr(error, "retryable", None)
    if isinstance(flag, bool):
        return flag
    aws = _aws_verdict(error)
    if aws is not None:
        return aws
    http = _httpx_verdict(error)
    if http is not None:
        return http
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return status in TRANSIENT_STATUS_CODES
    if any((c.__module__.split(".")[0], c.__name__) in _TRANSIENT_CLASSES for c in type(error).__mro__):
        return True
    if isinstance(error, (TimeoutError, ConnectionError)):
        return True
    return None


def _aws_verdict(error: BaseException) -> bool | None:
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(error, (ConnectionError, HTTPClientError)):
        return True  # endpoint unreachable, connection closed, read or connect timeout
    if not isinstance(error, ClientError):
        return None
    code = str(error.response.get("Error", {}).get("Code", ""))
    # Errors inside an event stream arrive with the code's first letter in lower case ("throttlingException").
    code = code[:1].upper() + code[1:]
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in TRANSIENT_ERROR_CODES or status in TRANSIENT_STATUS_CODES


def _httpx_verdict(error: BaseException) -> bool | None:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx comes with the Strands providers
        return None
    if isinstance(error, httpx.TransportError):
        return True  # connect, read and write errors and timeouts
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code in TRANSIENT_STATUS_CODES
    return None
