"""The sandbox function: the invocation contract (a fake invoker carries real-shaped payloads) and its handler."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from blackboard import TaskState
from tests.wrapper.conftest import Harness
from tests.wrapper.test_sandbox import CONTEXT, OK_CODE, request
from wrapper.aws_lambda import ENV_SANDBOX_FUNCTION, worker_sandbox
from wrapper.exceptions import SandboxError
from wrapper.executor import Executor
from wrapper.sandbox import SandboxPool
from wrapper.sandbox_function import (
    MAX_PAYLOAD_BYTES,
    LambdaInvoker,
    RemoteSandbox,
    SandboxInvocation,
    answer,
    handler,
)

NOTE_CODE = """
from wrapper import sdk

def handler(item):
    sdk.note("cooked", item)
    print("cooking", item)
    return {"item": item, "task": sdk.context().task_id}
"""


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=1) as sandbox:
        yield sandbox


class FakeFunction:
    """Lambda in front of :func:`answer`: JSON bytes in, JSON bytes out, and every payload it was sent."""

    def __init__(self, pool: SandboxPool, remaining_seconds: float = 60.0) -> None:
        self.pool = pool
        self.remaining = remaining_seconds
        self.payloads: list[bytes] = []

    def __call__(self, payload: bytes) -> tuple[bytes, str | None]:
        self.payloads.append(payload)
        return json.dumps(answer(json.loads(payload), self.remaining, self.pool.run)).encode(), None


def invocation(source: bytes, **changes: Any) -> dict[str, Any]:
    event = {
        "schema": "arbiter.sandbox/1",
        "code": base64.b64encode(source).decode(),
        "sha256": hashlib.sha256(source).hexdigest(),
        "module_name": "agent_under_test",
        "entrypoint": "handler",
        "input": {"n": 1},
        "context": CONTEXT,
        "limits": {"timeout_seconds": 20.0},
    }
    return {**event, **changes}


def test_a_request_runs_in_the_function_and_comes_back_as_its_outcome(pool: SandboxPool) -> None:
    function = FakeFunction(pool)
    outcome = RemoteSandbox(function).run(request(NOTE_CODE, {"item": "fries"}))
    assert outcome.status == "succeeded", outcome
    assert outcome.output == {"item": "fries", "task": "t-7"}
    assert outcome.notes == (("cooked", "fries"),) and outcome.stdout_tail == "cooking fries\n"
    (payload,) = function.payloads
    sent = json.loads(payload)
    assert sent["schema"] == "arbiter.sandbox/1" and base64.b64decode(sent["code"]) == NOTE_CODE.encode()
    assert sent["sha256"] == hashlib.sha256(NOTE_CODE.encode()).hexdigest()
    assert sent["input"] == {"item": "fries"} and sent["context"] == CONTEXT
    assert sent["limits"]["output_bytes"] < MAX_PAYLOAD_BYTES  # the whole answer fits in Lambda's response


def test_the_executor_records_what_the_function_answered(harness: Harness, pool: SandboxPool) -> None:
    agent = harness.register("echo", "def handler(**kwargs):\n    return {'echo': kwargs}\n")
    executor = Executor(harness.backends, sandbox=RemoteSandbox(FakeFunction(pool)))
    (message,) = harness.wave((agent, {"item": "burger"}))
    completion = executor.execute(message)
    executor.close()
    assert completion is not None and completion.status is TaskState.SUCCEEDED
    assert completion.output == {"echo": {"item": "burger"}}
    task = harness.backends.blackboard.get_task(message.orchestration_id, message.task_id)
    assert task.state is TaskState.SUCCEEDED


def test_code_that_does_not_match_its_hash_is_refused_unrun(pool: SandboxPool) -> None:
    ran: list[object] = []
    event = invocation(OK_CODE.encode(), sha256=hashlib.sha256(b"something else").hexdigest())
    result = answer(event, 60.0, lambda req: ran.append(req))  # type: ignore[arg-type,func-returns-value]
    assert ran == []
    assert (result["status"], result["error_type"], result["retryable"]) == ("failed", "IntegrityError", False)


@pytest.mark.parametrize(
    "changes",
    [{"schema": "arbiter.sandbox/9"}, {"code": "not base64!"}, {"limits": {"timeout_seconds": "soon"}}, {"x": 1}],
)
def test_what_is_not_an_invocation_is_answered_as_an_invalid_request(changes: dict[str, Any]) -> None:
    result = answer(invocation(OK_CODE.encode(), **changes), 60.0, lambda req: pytest.fail("must not run"))
    assert (result["status"], result["error_type"], result["retryable"]) == ("failed", "InvalidRequest", False)


def test_the_timeout_leaves_the_function_time_to_answer(pool: SandboxPool) -> None:
    slow = "import time\ndef handler(n):\n    time.sleep(60)\n"
    result = answer(invocation(slow.encode(), limits={"timeout_seconds": 60.0}), 4.0, pool.run)
    assert (result["status"], result["error_type"]) == ("timed_out", "Timeout")


def test_the_child_gets_the_functions_own_role_and_nothing_else(
    pool: SandboxPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAWORKER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "worker-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "worker-token")
    monkeypatch.setenv("ARBITER_BLACKBOARD_TABLE", "must-not-cross")
    code = "import os\ndef handler(n):\n    return sorted(os.environ)\n"
    result = answer(invocation(code.encode()), 60.0, pool.run)
    assert result["status"] == "succeeded", result
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} <= set(result["output"])
    assert "ARBITER_BLACKBOARD_TABLE" not in result["output"]


def test_a_crash_of_the_function_is_a_retryable_sandbox_crash() -> None:
    error = json.dumps({"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error"}).encode()
    outcome = RemoteSandbox(lambda payload: (error, "Unhandled")).run(request(OK_CODE))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "SandboxCrashed", True)
    assert "Runtime.OutOfMemory" in (outcome.error_message or "")


def test_an_answer_of_another_shape_is_a_protocol_error() -> None:
    outcome = RemoteSandbox(lambda payload: (b'{"status": "succeeded", "admin": true}', None)).run(request(OK_CODE))
    assert (outcome.status, outcome.error_type, outcome.retryable) == ("failed", "ProtocolError", False)


def test_a_request_larger_than_an_invocation_is_refused_before_sending() -> None:
    sent: list[bytes] = []
    remote = RemoteSandbox(lambda payload: (sent.append(payload), None))  # type: ignore[func-returns-value,arg-type]
    outcome = remote.run(request(OK_CODE, {"blob": "x" * MAX_PAYLOAD_BYTES}))
    assert (outcome.error_type, outcome.retryable) == ("InvalidRequest", False) and sent == []


class FakeLambdaClient:
    def __init__(self, answer: bytes = b"{}", function_error: str | None = None, fail: bool = False) -> None:
        self.answer, self.function_error, self.fail = answer, function_error, fail
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.fail:
            raise ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}}, "Invoke")
        response: dict[str, Any] = {"StatusCode": 200, "Payload": io.BytesIO(self.answer)}
        if self.function_error:
            response["FunctionError"] = self.function_error
        return response


def test_the_invoker_calls_the_function_synchronously() -> None:
    client = FakeLambdaClient(answer=b'{"ok": 1}', function_error="Unhandled")
    body, error = LambdaInvoker("arbiter-dev-sandbox", client=client)(b'{"schema": "arbiter.sandbox/1"}')
    assert (body, error) == (b'{"ok": 1}', "Unhandled")
    assert client.calls == [
        {
            "FunctionName": "arbiter-dev-sandbox",
            "InvocationType": "RequestResponse",
            "Payload": b'{"schema": "arbiter.sandbox/1"}',
        }
    ]


def test_an_invocation_that_fails_is_a_retryable_sandbox_error() -> None:
    with pytest.raises(SandboxError, match="TooManyRequestsException") as raised:
        LambdaInvoker("arbiter-dev-sandbox", client=FakeLambdaClient(fail=True))(b"{}")
    assert raised.value.retryable


def test_the_functions_run_untrusted_code_in_the_sandbox_function_when_one_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_SANDBOX_FUNCTION, "arbiter-dev-sandbox")
    sandbox, env = worker_sandbox()
    assert isinstance(sandbox, RemoteSandbox) and env == {}
    monkeypatch.delenv(ENV_SANDBOX_FUNCTION)
    sandbox, env = worker_sandbox()
    assert type(sandbox) is SandboxPool and callable(env)


def test_the_handler_answers_an_invocation_as_lambda_calls_it(
    pool: SandboxPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    monkeypatch.setattr("wrapper.sandbox_function._the_pool", lambda: pool)
    result = handler(
        json.loads(SandboxInvocation(**invocation(OK_CODE.encode())).model_dump_json(by_alias=True)), Context()
    )
    assert result["schema"] == "arbiter.sandbox-outcome/1"
    assert (result["status"], result["output"]) == ("succeeded", {"ok": True, "n": 1})
