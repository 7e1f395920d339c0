"""A home worth showing on the dashboard, and a test client that has logged in with the token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from arbiter import LocalRuntime
from arbiter.ui import Dashboard, Gate, create_app
from blackboard import AgentManifest, AgentOrigin, AgentState, Backends, TaskState

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
GATE = Gate(token="test-token-fake", csrf="test-csrf-fake")
REPORT: dict[str, Any] = {
    "passed": True,
    "duration_ms": 42.0,
    "checks": [
        {"name": "policy", "passed": True, "evidence": f"imports ok {HOSTILE}", "duration_ms": 1.0},
        {
            "name": "example[0]",
            "passed": True,
            "evidence": "matched",
            "duration_ms": 3.0,
            "input": {"text": "a b"},
            "expected": {"words": 2},
            "got": {"words": 2},
        },
    ],
}
CODE = (
    b"def handler(text: str) -> dict:\n"
    b"    # </pre><script>window.__pwned = 3</script>\n"
    b"    return {'words': len(text.split())}\n"
)


def seed(backends: Backends) -> None:
    """counter@1 active (with runs), counter@2 waiting for approval (fabricated, with a validation report)."""
    code = backends.code_store.put(CODE)
    report = backends.code_store.put_json(REPORT)
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    for version, state in ((1, AgentState.ACTIVE), (2, AgentState.PENDING_APPROVAL)):
        backends.registry.put(
            AgentManifest(
                name="counter",
                version=version,
                description=f"Counts words. {HOSTILE}",
                code=code,
                state=state,
                origin=AgentOrigin.FABRICATOR,
                input_schema=schema,
                output_schema={"type": "object"},
                validation_report=report.sha256,
            )
        )
    for _ in range(3):
        backends.registry.record_completion("counter", 1, TaskState.SUCCEEDED, 20.0, 5)
    backends.registry.record_completion("counter", 1, TaskState.FAILED, 900.0, 0)


def client(runtime: LocalRuntime, *, can_run: bool = False, login: bool = True, **settings: Any) -> TestClient:
    """A client of the dashboard over ``runtime`` (logged in: it holds the token's cookie)."""
    app = create_app(Dashboard(runtime=runtime, can_run=can_run, gate=GATE, **settings))
    test_client = TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False)
    if login:
        answer = test_client.get(f"/?token={GATE.token}")
        assert answer.status_code == 303, answer.text
    return test_client


def home_runtime(path: Path) -> LocalRuntime:
    """A read-only runtime over a seeded home."""
    runtime = LocalRuntime(path, start=False)
    seed(runtime.backends)
    return runtime
