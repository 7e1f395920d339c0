"""An orchestration worth reporting: a retried task, a fabrication, tokens, and hostile text everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arbiter import LocalRuntime
from arbiter.config import Deployment
from arbiter.testing import ScriptedModel
from tests.arbiter.conftest import FAST
from tests.fabrication_turns import WORD_COUNT_OUTPUT, WORD_COUNT_TESTS
from wrapper import SandboxPool

HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
DRAFT = {
    "structured": {
        "name": "word_counter",
        "description": "Counts the words of a text.",
        "code": "def handler(text: str) -> dict:\n    return {'words': len(text.split())}\n",
        "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        "output_schema": WORD_COUNT_OUTPUT,
        "sample_inputs": [{"text": "one two three"}],
    }
}


def call(name: str, **data: Any) -> dict[str, Any]:
    return {"name": name, "input": data}


def run_scenario(home: Path, pool: SandboxPool) -> str:
    """Run it to the end in ``home`` and return the orchestration id."""
    failures = [1]

    def flaky(text: str) -> str:
        if failures:
            failures.pop()
            raise RuntimeError(f"first attempt fails {HOSTILE}")
        return f"echo {text}"

    turns = [
        {
            "tool_calls": [
                call("fabricate", capability="Count the words in a piece of text."),
                call("flaky", text=HOSTILE),
            ],
            "usage": {"input_tokens": 30, "output_tokens": 12},
        },
        {"tool_calls": [call("word_counter", text="a b c")]},
        {"text": f"3 words {HOSTILE}"},
    ]
    with LocalRuntime(
        home,
        model=ScriptedModel(turns),
        fabricator_model=ScriptedModel([WORD_COUNT_TESTS, DRAFT]),
        settings=FAST,
        matching="all",
        deployment=Deployment(sandbox=pool, sweep_interval=0.1),
    ) as rt:
        rt.register_agent("flaky", "Echoes a text; fails once.", flaky)
        result = rt.run({"source": "test.report", "detail-type": "Hostile", "detail": {"text": HOSTILE}}, timeout=120)
        assert result.ok, result.error
        return result.orchestration_id
