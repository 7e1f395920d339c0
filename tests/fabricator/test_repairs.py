"""Repairs that follow from the draft itself are made before its checks (fabricator.repairs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blackboard import FabricationRequest, memory_backends
from fabricator.fabricator import Fabricator
from fabricator.repairs import with_required_parameters
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

CODE = "def handler(numbers, *, scale, digits=2):\n    return {'total': round(sum(numbers) * scale, digits)}\n"
PROPERTIES = {"numbers": {"type": "array"}, "scale": {"type": "number"}, "digits": {"type": "integer"}}


def test_parameters_without_a_default_become_required_when_the_schema_declares_them() -> None:
    schema = {"type": "object", "properties": PROPERTIES, "required": ["scale"]}
    repaired, added = with_required_parameters(CODE, schema)
    assert added == ["numbers"] and repaired["required"] == ["scale", "numbers"]
    assert schema["required"] == ["scale"]  # the draft's own schema is not changed in place
    assert with_required_parameters(CODE, {"type": "object", "properties": PROPERTIES})[1] == ["numbers", "scale"]


@pytest.mark.parametrize(
    ("code", "schema"),
    [
        (CODE, {"type": "object", "properties": {"scale": {"type": "number"}}, "required": ["scale"]}),  # undeclared
        ("def handler(:\n", {"type": "object", "properties": PROPERTIES}),  # does not parse
        ("def other(numbers):\n    return 1\n", {"type": "object", "properties": PROPERTIES}),  # no handler
        (CODE, {"type": "object", "properties": PROPERTIES, "required": "numbers"}),  # not a list: the check says so
    ],
)
def test_nothing_is_guessed(code: str, schema: dict[str, object]) -> None:
    assert with_required_parameters(code, schema) == (schema, [])


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    with SandboxPool(size=1) as sandbox:
        yield sandbox


def test_a_draft_whose_schema_forgot_a_required_parameter_is_published_at_the_first_attempt(pool: SandboxPool) -> None:
    code = "def handler(numbers):\n    return {'total': sum(numbers)}\n"
    draft = {
        "structured": {
            "code": code,
            "name": "list_total",
            "description": "Adds up a list of numbers.",
            "input_schema": {
                "type": "object",
                "properties": {"numbers": {"type": "array", "items": {"type": "number"}}},
            },
            "output_schema": {"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]},
        }
    }
    backends = memory_backends()
    model = ScriptedModel([draft])
    request = FabricationRequest.parse(
        {
            "orchestration_id": "o1",
            "task_id": "t1",
            "capability": "Add up a list of numbers.",
            "inputs": {"numbers": "the numbers"},
            "examples": [{"input": {"numbers": [1, 2, 3.5]}, "expected": {"total": 6.5}}],
        }
    )
    result = Fabricator(backends, model, pool, sample_timeout=5, tests="off").fabricate(request)
    assert result.attempts == 1 and model.calls == 1
    assert result.agent.input_schema["required"] == ["numbers"]
