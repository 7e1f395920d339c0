"""On AWS untrusted code runs in its own Lambda function: the invocation contract, its client and its handler.

The wrapper and the Fabricator functions can write the blackboard, the registry and the code bucket; inside them
Lambda gives no root and no namespaces, so an in-process box is the weaker, non-root one. With
``ARBITER_SANDBOX_FUNCTION`` set they run no worker code themselves: :class:`RemoteSandbox` sends each request (the
code, its SHA-256, the input, the task context and the limits) to the *sandbox function*, whose execution role is the
worker role (Bedrock invoke only), and turns its answer into a :class:`~wrapper.sandbox.SandboxOutcome`; the caller
records it as it would a local one. :func:`handler` (``wrapper.sandbox_function.handler``) is that function: it
verifies the hash, runs the request in a fresh child of its own sandbox pool (so nothing of one invocation meets the
next in a warm environment), and answers. Its failures are answers too: only a crash of the function itself (out of
memory, out of time) reaches the caller as a function error, which is a retryable ``SandboxCrashed``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from wrapper.exceptions import SandboxError
from wrapper.sandbox import SandboxCapabilities, SandboxLimits, SandboxOutcome, SandboxPool, SandboxRequest
from wrapper.sandbox.pool import StartFence

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Invoker",
    "LambdaInvoker",
    "RemoteSandbox",
    "SandboxAnswer",
    "SandboxInvocation",
    "handler",
]

#: Lambda's limit on a synchronous request and response.
MAX_PAYLOAD_BYTES = 6 * 1024**2
#: Room left in the response for everything but the output.
_ANSWER_OVERHEAD = 512 * 1024
#: Time the sandbox function keeps for answering after its child's timeout.
_ANSWER_SECONDS = 3.0
#: What the child may see of the function's own environment: its role's credentials (the worker role) and region.
_PASSED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION")

_LIMITS = TypeAdapter(SandboxLimits)
#: Sends an invocation's bytes; returns the answer's bytes and Lambda's ``FunctionError`` (``None`` when it answered).
Invoker = Callable[[bytes], tuple[bytes, str | None]]


class SandboxInvocation(BaseModel):
    """What the sandbox function is asked to run (``arbiter.sandbox/1``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["arbiter.sandbox/1"] = Field("arbiter.sandbox/1", alias="schema")
    code: str  # base64
    sha256: str
    module_name: str
    entrypoint: str = "handler"
    input: dict[str, Any]
    context: dict[str, Any]
    limits: dict[str, Any]


class SandboxAnswer(BaseModel):
    """What it answers (``arbiter.sandbox-outcome/1``): a :class:`SandboxOutcome` as JSON."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["arbiter.sandbox-outcome/1"] = Field("arbiter.sandbox-outcome/1", alias="schema")
    status: Literal["succeeded", "failed", "timed_out"]
    output: Any = None
    error_type: str | None = None
    error_message: str | None = None
    retryable: bool = True
    duration_ms: float = 0.0
    usage: dict[str, int] = {}
    notes: list[tuple[str, Any]] = []
    stdout_tail: str = ""

    def outcome(self) -> SandboxOutcome:
        """The outcome it reports."""
        data = self.model_dump(exclude={"schema_"})
        return SandboxOutcome(**{**data, "notes": tuple(tuple(n) for n in data["notes"])})


def _failed(error_type: str, message: str, *, retryable: bool) -> SandboxOutcome:
    return SandboxOutcome(status="failed", error_type=error_type, error_message=message, retryable=retryable)


class LambdaInvoker:
    """Invokes the sandbox function synchronously.

    Args:
        function_name: its name or ARN.
        client: a boto3 Lambda client (default: one made with the shared botocore configuration).
    """

    def __init__(self, function_name: str, *, client: Any = None) -> None:
        self.function_name = function_name
        self._client = client

    def __call__(self, payload: bytes) -> tuple[bytes, str | None]:
        """Invoke and read the answer.

        Raises:
            SandboxError: the invocation itself failed (throttled, not found, no permission): retryable.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if self._client is None:
            from blackboard.adapters.aws._clients import make_client

            self._client = make_client("lambda")
        try:
            response = self._client.invoke(
                FunctionName=self.function_name, InvocationType="RequestResponse", Payload=payload
            )
            body = response["Payload"].read()
        except (BotoCoreError, ClientError) as exc:
            raise SandboxError(f"the sandbox function {self.function_name} could not be invoked: {exc}") from exc
        error = response.get("FunctionError")
        return bytes(body), str(error) if error else None


class RemoteSandbox(SandboxPool):
    """Runs each request in the sandbox function; in shape a :class:`SandboxPool`, so every caller of a pool takes it.

    Args:
        invoke: sends an invocation (a :class:`LambdaInvoker`, or a fake in tests).
    """

    def __init__(self, invoke: Invoker) -> None:
        super().__init__(size=1, preload=())
        self._invoke = invoke

    def start(self) -> RemoteSandbox:
        """Nothing to start: the function is there."""
        return self

    def close(self) -> None:
        """Nothing to stop."""

    @property
    def capabilities(self) -> SandboxCapabilities:
        """What this process grants: nothing, because nothing runs here."""
        return SandboxCapabilities(separate_user=False, network_namespace=False, mount_namespace=False)

    def run(self, request: SandboxRequest, *, fence: StartFence | None = None) -> SandboxOutcome:
        """Run one request in the sandbox function (``fence`` as in :meth:`SandboxPool.run`).

        Raises:
            SandboxError: the function could not be invoked (retryable, like a pool that cannot start a zygote).
        """
        if fence is not None:
            bound = fence()
            if bound is None:
                return _failed("NotStarted", "the start fence refused the request", retryable=True)
            if bound != math.inf:
                request = replace(request, limits=replace(request.limits, start_by=bound))
        try:
            payload = _invocation(request)
        except (TypeError, ValueError) as exc:
            return _failed(
                "InvalidRequest", f"the request cannot be sent to the sandbox function: {exc}", retryable=False
            )
        if len(payload) > MAX_PAYLOAD_BYTES:
            message = f"the request is {len(payload)} bytes; a sandbox function invocation takes {MAX_PAYLOAD_BYTES}"
            return _failed("InvalidRequest", message, retryable=False)
        body, function_error = self._invoke(payload)
        if function_error is not None:
            return _failed(
                "SandboxCrashed", f"the sandbox function failed ({function_error}): {_error_text(body)}", retryable=True
            )
        try:
            return SandboxAnswer.model_validate_json(body).outcome()
        except ValidationError as exc:
            return _failed("ProtocolError", f"the sandbox function answered something else: {exc}", retryable=False)


def _invocation(request: SandboxRequest) -> bytes:
    limits = asdict(request.limits)
    # The whole answer must fit in Lambda's response.
    limits["output_bytes"] = min(request.limits.output_bytes, MAX_PAYLOAD_BYTES - _ANSWER_OVERHEAD)
    invocation = SandboxInvocation(
        code=base64.b64encode(request.code).decode("ascii"),
        sha256=hashlib.sha256(request.code).hexdigest(),
        module_name=request.module_name,
        entrypoint=request.entrypoint,
        input=dict(request.input),
        context=dict(request.context),
        limits=limits,
    )
    return invocation.model_dump_json(by_alias=True).encode()


def _error_text(body: bytes) -> str:
    try:
        error = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", "replace")
    if isinstance(error, dict):
        return f"{error.get('errorType', '')}: {error.get('errorMessage', '')}"[:2000]
    return str(error)[:2000]


# ---------------------------------------------------------------------- the sandbox function itself


def _build_pool() -> SandboxPool:
    return SandboxPool(size=1)


def _close_pool(pool: SandboxPool) -> None:
    pool.close()


_pool: Any = None  # a PerEnvironment, made on the first invocation (it imports Powertools)


def _the_pool() -> SandboxPool:
    from wrapper.aws_lambda import PerEnvironment

    global _pool
    if _pool is None:
        _pool = PerEnvironment(_build_pool, _close_pool)
    pool: SandboxPool = _pool.get()
    return pool


def answer(
    event: Mapping[str, Any], remaining_seconds: float, run: Callable[[SandboxRequest], SandboxOutcome]
) -> dict[str, Any]:
    """Check one invocation and run it with ``run``; the answer as JSON (every failure is an answer)."""
    try:
        invocation = SandboxInvocation.model_validate(event)
        limits = _LIMITS.validate_python(invocation.limits)
        code = base64.b64decode(invocation.code, validate=True)
    except (ValidationError, TypeError, ValueError) as exc:
        return _answer(_failed("InvalidRequest", f"not a sandbox invocation: {exc}", retryable=False))
    if hashlib.sha256(code).hexdigest() != invocation.sha256:
        message = f"the code does not match its SHA-256 {invocation.sha256}: refused"
        return _answer(_failed("IntegrityError", message, retryable=False))
    timeout = min(limits.timeout_seconds, max(remaining_seconds - _ANSWER_SECONDS, 0.001))
    request = SandboxRequest(
        code=code,
        module_name=invocation.module_name,
        input=invocation.input,
        context=invocation.context,
        entrypoint=invocation.entrypoint,
        env={key: os.environ[key] for key in _PASSED if key in os.environ},
        limits=SandboxLimits(**{**asdict(limits), "timeout_seconds": timeout}),
    )
    return _answer(run(request))


def _answer(outcome: SandboxOutcome) -> dict[str, Any]:
    data = asdict(outcome)
    answer = SandboxAnswer(**{**data, "usage": dict(outcome.usage), "notes": [list(n) for n in outcome.notes]})
    result: dict[str, Any] = answer.model_dump(mode="json", by_alias=True)
    return result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The sandbox function: run one invocation in a fresh sandbox child and answer."""
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 900.0
    return answer(event, remaining, _the_pool().run)
