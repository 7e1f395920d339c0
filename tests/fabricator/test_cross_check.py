"""Cross-checks: a draft is published only when a second one, sampled apart, answers the probes the same.

Every model turn is scripted: the first draft (greedy), then the second (asked for under a sampling block).
"""

from __future__ import annotations

from typing import Any

import pytest

from blackboard import Backends, FabricationRequest
from fabricator.constants import ENV_FABRICATOR_CROSS_CHECK
from fabricator.crosscheck import PARTNER_DRAFTS, cross_check_enabled
from fabricator.exceptions import FabricatorError
from fabricator.fabricator import FabricationFailedError, Fabricator
from fabricator.probes import probes
from tests.fabrication_turns import RecordingModel
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
OUTPUT = {"type": "object", "properties": {"letters": {"type": "integer"}}, "required": ["letters"]}
ASCII = """def handler(text: str) -> dict:
    return {"letters": sum(1 for c in text if c.isascii() and c.isalpha())}
"""
# The same reading written another way.
ASCII_REGEX = """import re


def handler(text: str) -> dict:
    return {"letters": len(re.findall(r"[A-Za-z]", text))}
"""
# Counts accented letters too: right on the example, wrong on the rule.
ANY_LETTER = """def handler(text: str) -> dict:
    return {"letters": sum(1 for c in text if c.isalpha())}
"""
# The ASCII reading, but it refuses an empty text on purpose.
REFUSES_EMPTY = """from wrapper import sdk


def handler(text: str) -> dict:
    if not text:
        raise sdk.NonRetryableError("an empty text has no letters to count")
    return {"letters": sum(1 for c in text if "a" <= c.lower() <= "z")}
"""
WRONG = """def handler(text: str) -> dict:
    return {"letters": len(text)}
"""


def draft(code: str, **changes: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "name": "ascii_letter_counter",
        "description": "Counts the ASCII letters of a text.",
        "input_schema": SCHEMA,
        "output_schema": OUTPUT,
    }
    return {"structured": {**body, **changes}}


def request() -> FabricationRequest:
    return FabricationRequest.parse(
        {
            "orchestration_id": "o1",
            "task_id": "t1",
            "capability": "Count the letters of a text; only ASCII letters count. Return {'letters': <int>}.",
            "inputs": {"text": "the text"},
            "examples": [{"input": {"text": "Hello World"}, "expected": {"letters": 10}}],
        }
    )


def fabricator(backends: Backends, pool: SandboxPool, model: ScriptedModel, **kwargs: Any) -> Fabricator:
    return Fabricator(backends, model, pool, sample_timeout=5, tests="off", cross_check=True, **kwargs)


def test_a_second_candidate_that_agrees_confirms_the_first(backends: Backends, pool: SandboxPool) -> None:
    model = RecordingModel([draft(ASCII), draft(ASCII_REGEX, name="letter_counter")])
    result = fabricator(backends, pool, model).fabricate(request())
    assert result.attempts == 2 and result.report is not None
    assert backends.code_store.get(result.agent.code.sha256).decode() == ASCII  # the first is the one published
    probed = [c for c in result.report.checks if c.name.startswith("probe[")]
    assert probed and all(
        c.passed and "a second candidate written apart returned the same" in c.evidence for c in probed
    )
    assert any(c.input == {"text": "Héllo World"} and c.got == {"letters": 9} for c in probed)
    summary = next(c for c in result.report.checks if c.name == "cross_check")
    assert "letter_counter" in summary.evidence
    # The first draft is the model's own; the second is sampled.
    assert model.sampling[0] is None and model.sampling[1] is not None and model.sampling[1].temperature > 0


def test_candidates_that_read_a_rule_two_ways_publish_nothing(backends: Backends, pool: SandboxPool) -> None:
    model = RecordingModel([draft(ANY_LETTER), draft(ASCII)])
    with pytest.raises(FabricationFailedError) as caught:
        fabricator(backends, pool, model).fabricate(request())
    feedback = caught.value.feedback
    assert "nothing was published" in feedback and 'handler(text="Héllo World")' in feedback
    assert '{"letters": 10}' in feedback and '{"letters": 9}' in feedback
    assert list(backends.registry.list_agents()) == []
    assert "Héllo World" in caught.value.for_planner()
    assert len(model.sampling) == 2  # one dissent refuses: no third candidate is asked for


def test_the_same_program_written_again_agrees(backends: Backends, pool: SandboxPool) -> None:
    layout_only = "# counts letters\n" + ASCII.replace("-> dict:", "->dict:")
    result = fabricator(backends, pool, RecordingModel([draft(ASCII), draft(layout_only)])).fabricate(request())
    assert result.report is not None
    summary = next(c for c in result.report.checks if c.name == "cross_check")
    assert "same program" in summary.evidence


def test_a_probe_one_candidate_refuses_is_left_out(backends: Backends, pool: SandboxPool) -> None:
    result = fabricator(backends, pool, RecordingModel([draft(ASCII), draft(REFUSES_EMPTY)])).fabricate(request())
    assert result.report is not None
    compared = {c.input["text"] for c in result.report.checks if c.name.startswith("probe[") and c.input}
    assert "" not in compared and "Héllo World" in compared


def test_no_second_candidate_that_passes_its_checks_refuses_the_first(backends: Backends, pool: SandboxPool) -> None:
    model = RecordingModel([draft(ASCII), *[draft(WRONG) for _ in range(PARTNER_DRAFTS)]])
    with pytest.raises(FabricationFailedError) as caught:
        fabricator(backends, pool, model).fabricate(request())
    assert "could not be cross-checked" in caught.value.feedback and "example[0]" in caught.value.feedback
    assert caught.value.attempts == 1 + PARTNER_DRAFTS
    assert list(backends.registry.list_agents()) == []


def test_a_second_candidate_that_fails_its_checks_gets_one_fix(backends: Backends, pool: SandboxPool) -> None:
    model = RecordingModel([draft(ASCII), draft(WRONG), draft(ASCII_REGEX)])
    result = fabricator(backends, pool, model).fabricate(request())
    assert result.attempts == 3 and result.report is not None
    assert any(c.name == "cross_check" for c in result.report.checks)
    # The second draft is sampled; its fix is asked with its own code and refusal, greedily.
    assert model.sampling[1] is not None and model.sampling[2] is None
    fix = "".join(b.get("text", "") for m in model.requests[2].messages for b in m["content"])
    assert "len(text)" in fix and "example[0]" in fix


def test_off_publishes_the_first_draft_that_passes(backends: Backends, pool: SandboxPool) -> None:
    fab = Fabricator(backends, RecordingModel([draft(ANY_LETTER)]), pool, sample_timeout=5, cross_check=False)
    assert fab.fabricate(request()).attempts == 1


def test_the_setting_comes_from_the_argument_then_the_environment_then_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_FABRICATOR_CROSS_CHECK, raising=False)
    assert cross_check_enabled() is False
    monkeypatch.setenv(ENV_FABRICATOR_CROSS_CHECK, "on")
    assert cross_check_enabled() is True and cross_check_enabled(False) is False
    monkeypatch.setenv(ENV_FABRICATOR_CROSS_CHECK, "sometimes")
    with pytest.raises(FabricatorError, match="ARBITER_FABRICATOR_CROSS_CHECK must be on or off"):
        cross_check_enabled()


def test_probes_push_each_field_to_its_edges_one_at_a_time() -> None:
    made = probes([{"text": "Hello", "n": 12}], limit=40)
    assert {"text": "", "n": 12} in made and {"text": "HELLO", "n": 12} in made and {"text": "Héllo", "n": 12} in made
    assert {"text": "Hello", "n": -12} in made and {"text": "Hello", "n": 0} in made
    assert {"text": "Hello", "n": 12} not in made  # the given input itself is no probe
    assert len(made) == len({str(sorted(p.items())) for p in made})  # no duplicates


def test_probes_take_every_field_before_the_second_edge_of_any() -> None:
    made = probes([{"items": [3, 1, 2], "flag": True, "x": 2.5}], limit=3)
    assert made == [
        {"items": [], "flag": True, "x": 2.5},
        {"items": [3, 1, 2], "flag": False, "x": 2.5},
        {"items": [3, 1, 2], "flag": True, "x": 0.0},
    ]
    assert probes([{"data": {"a": 1}, "none": None}]) == [{"data": {}, "none": None}]
