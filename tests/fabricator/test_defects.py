"""Defects on the edges: a draft that passes its examples but breaks on a probe input is refused, then fixed.

The probes are the examples' inputs pushed to their edges (``fabricator.probes``); what counts as a defect there is
in ``fabricator.defects``. Every model turn is scripted.
"""

from __future__ import annotations

from typing import Any

import pytest

from blackboard import Backends, FabricationRequest
from fabricator.defects import defects, outside_schema
from fabricator.fabricator import FabricationFailedError, Fabricator
from fabricator.harness import OUTPUT_SCHEMA_ERROR, Check
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
OUTPUT = {"type": "object", "properties": {"words": {"type": "integer"}}, "required": ["words"]}
EXAMPLE = {"input": {"text": "two words"}, "expected": {"words": 2}}
RIGHT = "def handler(text: str) -> dict:\n    return {'words': len(text.split())}\n"
# Right on the example, but null for the empty text: outside its own schema, a failed attempt at run time.
NULL_ON_EMPTY = (
    "def handler(text: str) -> dict:\n    if not text:\n        return None\n    return {'words': len(text.split())}\n"
)
# Right on the example, but a bug on an upper-cased text: an integer taken for a text.
BUG_ON_UPPER = (
    "def handler(text: str) -> dict:\n"
    "    if text.isupper():\n"
    "        return {'words': len(text.split()).lower()}\n"
    "    return {'words': len(text.split())}\n"
)
# Refuses the empty text on purpose: not a defect.
REFUSES_EMPTY = (
    "def handler(text: str) -> dict:\n"
    "    if not text:\n"
    "        raise ValueError('no text')\n"
    "    return {'words': len(text.split())}\n"
)


def draft(code: str) -> dict[str, Any]:
    body = {
        "code": code,
        "name": "word_counter",
        "description": "Counts the words of a text.",
        "input_schema": SCHEMA,
        "output_schema": OUTPUT,
    }
    return {"structured": body}


def request() -> FabricationRequest:
    return FabricationRequest.parse(
        {
            "orchestration_id": "o1",
            "task_id": "t1",
            "capability": "Count the words of a text, split on whitespace.",
            "inputs": {"text": "the text"},
            "examples": [EXAMPLE],
        }
    )


def _prompt(fab: Fabricator, call: int) -> str:
    return str(fab.generator.model.requests[call].messages[-1]["content"][0]["text"])  # type: ignore[attr-defined]


def _check(error: str, evidence: str = "", *, passed: bool = False) -> Check:
    return Check(name="probe[0]", passed=passed, evidence=evidence or error, duration_ms=1.0, error=error)


def test_what_counts_as_a_defect() -> None:
    broken = [
        _check("not_json"),
        _check("timed_out"),
        _check("NameError", "NameError: name 'count' is not defined"),
        _check("AttributeError", "AttributeError: 'int' object has no attribute 'quantize'"),
        _check("TypeError", "TypeError: unsupported operand type(s) for +: 'int' and 'str'"),
    ]
    outside = _check(OUTPUT_SCHEMA_ERROR, 'handler(text="") returned null, which does not match the output schema')
    fine = [
        _check("", 'handler(text="x") returned {"words": 1}', passed=True),
        outside,
        _check("ValueError", "ValueError: no text"),
        _check("NonRetryableError"),
        _check("IndexError", "IndexError: list index out of range"),
        _check("KeyError"),
        _check("ZeroDivisionError"),
        _check("AttributeError", "AttributeError: 'NoneType' object has no attribute 'group'"),
        _check("", "input {} does not match the input schema at text"),
    ]
    assert defects([*broken, *fine]) == broken
    assert outside_schema([*broken, *fine]) == [outside]


def test_a_draft_that_breaks_on_an_upper_cased_text_is_refused_and_its_fix_published(
    backends: Backends, pool: SandboxPool
) -> None:
    fab = Fabricator(backends, ScriptedModel([draft(BUG_ON_UPPER), draft(RIGHT)]), pool, sample_timeout=5)
    result = fab.fabricate(request())
    assert result.attempts == 2 and result.agent.name == "word_counter"
    second = _prompt(fab, 1)
    assert 'handler(text="TWO WORDS")' in second and "AttributeError: 'int' object has no attribute 'lower'" in second
    assert "raise ValueError" in second
    assert result.report is not None and result.report.passed
    edges = [c for c in result.report.checks if c.name == "edges"]
    assert len(edges) == 1 and "no defect" in edges[0].evidence
    assert backends.code_store.get(result.agent.code.sha256).decode() == RIGHT


def test_null_outside_the_schema_on_an_edge_is_reported_not_refused(backends: Backends, pool: SandboxPool) -> None:
    fab = Fabricator(backends, ScriptedModel([draft(NULL_ON_EMPTY)]), pool, sample_timeout=5)
    result = fab.fabricate(request())
    assert result.attempts == 1 and result.report is not None and result.report.passed
    (edges,) = [c for c in result.report.checks if c.name == "edges"]
    assert "1 output(s) outside the output schema" in edges.evidence and 'handler(text="")' in edges.evidence


def test_a_refusal_on_purpose_is_not_a_defect(backends: Backends, pool: SandboxPool) -> None:
    fab = Fabricator(backends, ScriptedModel([draft(REFUSES_EMPTY)]), pool, sample_timeout=5)
    result = fab.fabricate(request())
    assert result.attempts == 1 and result.report is not None and result.report.passed


def test_drafts_that_all_break_on_the_edges_publish_nothing(backends: Backends, pool: SandboxPool) -> None:
    other = BUG_ON_UPPER.replace(".lower()", ".upper()")
    model = ScriptedModel(
        [draft(BUG_ON_UPPER), draft(other), draft(BUG_ON_UPPER.replace("text.split()", "text.split(' ')"))]
    )
    fab = Fabricator(backends, model, pool, sample_timeout=5, max_attempts=3)
    with pytest.raises(FabricationFailedError) as failed:
        fab.fabricate(request())
    assert "broke on" in str(failed.value) and "AttributeError" in str(failed.value)
    report = failed.value.report
    assert report is not None and not report.passed
    assert any(c.name.startswith("probe[") and c.error == "AttributeError" for c in report.failed)
    assert list(backends.registry.list_agents()) == []
