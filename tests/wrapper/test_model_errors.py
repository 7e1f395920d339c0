"""Model-provider errors are sorted into transient and permanent by type and attributes, never by message text."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, EventStreamError, ReadTimeoutError
from strands.types.exceptions import ContextWindowOverflowException, ModelThrottledException

from wrapper.model_errors import transient_model_error


def _client_error(code: str, status: int, cls: type[ClientError] = ClientError) -> ClientError:
    return cls({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Converse")


class FakeStatusError(Exception):
    """An SDK error carrying an HTTP status (OpenAI's and Ollama's errors do)."""

    def __init__(self, status_code: int) -> None:
        super().__init__("rate limit exceeded" if status_code == 400 else "fine")  # the text must not matter
        self.status_code = status_code


def _http_status(status: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat")
    return httpx.HTTPStatusError("x", request=request, response=httpx.Response(status, request=request))


def _wrapped(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("the provider failed") from cause
    except RuntimeError as exc:
        return exc


TRANSIENT: list[Any] = [
    ModelThrottledException("slow down"),
    _client_error("ThrottlingException", 429),
    _client_error("ServiceUnavailableException", 503),
    _client_error("ModelNotReadyException", 429),
    _client_error("SomethingNew", 500),
    _client_error("throttlingException", 400, EventStreamError),  # an error inside the response stream
    EndpointConnectionError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
    ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com"),
    httpx.ConnectError("refused"),
    httpx.ReadTimeout("slow"),
    _http_status(503),
    FakeStatusError(429),
    FakeStatusError(502),
    TimeoutError(),
    ConnectionRefusedError(),
    _wrapped(ModelThrottledException("slow down")),
]
PERMANENT: list[Any] = [
    _client_error("ValidationException", 400),
    _client_error("AccessDeniedException", 403),
    _client_error("ResourceNotFoundException", 404),
    ContextWindowOverflowException("too long"),
    _http_status(401),
    FakeStatusError(400),
    ValueError("Throttling: rate exceeded, please retry"),  # words of a transient error, but a bug
    _wrapped(ValueError("bad")),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors(error: BaseException) -> None:
    assert transient_model_error(error)


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: type(e).__name__)
def test_permanent_errors(error: BaseException) -> None:
    assert not transient_model_error(error)


def test_an_explicit_retryable_attribute_decides() -> None:
    class Flagged(Exception):
        retryable = False

    assert not transient_model_error(_wrapped(Flagged()))
    Flagged.retryable = True
    assert transient_model_error(Flagged())
