"""Workers that are right, not just runnable: caller examples, tests written first, disagreements settled, reuse.

Every model turn is scripted: the tests the Fabricator writes before the code (``case_table_turn``), its drafts,
and the derivations that settle a failed test.
"""

from __future__ import annotations

from typing import Any

import pytest

from blackboard import AgentManifest, Backends, FabricationRequest, RecordValidationError, memory_backends
from fabricator.exceptions import FabricatorError
from fabricator.fabricator import FabricationFailedError, Fabricator
from tests.fabrication_turns import RecordingModel, case_table_turn
from wrapper.field_checks import FieldRefused, current_field_checks
from wrapper.sandbox import SandboxPool
from wrapper.testing import ScriptedModel

SCHEMA = {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}
OUTPUT = {
    "type": "object",
    "properties": {"datapoints": {"type": "array", "items": {"type": "number"}}, "threshold": {"type": "number"}},
    "required": ["datapoints", "threshold"],
}
REASON = "Threshold Crossed: 3 out of the last 3 datapoints [41.0, 57.0, 66.0] were greater than the threshold (25.0)."
EXAMPLE = {"input": {"reason": REASON}, "expected": {"datapoints": [41.0, 57.0, 66.0], "threshold": 25.0}}
RIGHT = """import re


def handler(reason: str) -> dict:
    points = [float(v) for v in re.search(r"\\[([^\\]]*)\\]", reason).group(1).split(",")]
    return {"datapoints": points, "threshold": float(re.search(r"threshold \\(([-0-9.]+)\\)", reason).group(1))}
"""
# Takes the "3" of "3 out of the last 3" for everything, as a small model did.
WRONG = """import re


def handler(reason: str) -> dict:
    first = float(re.findall(r"[0-9.]+", reason)[0])
    return {"datapoints": [first], "threshold": first}
"""
ONE = "Threshold Crossed: 1 datapoint [0.5] was greater than the threshold (0.25)."


def draft(code: str, **changes: Any) -> dict[str, Any]:
    body = {
        "code": code,
        "name": "alarm_reason_reader",
        "description": "Reads the datapoints and the threshold out of a CloudWatch alarm's state reason.",
        "input_schema": SCHEMA,
        "output_schema": OUTPUT,
    }
    return {"structured": {**body, **changes}}


def derivation(value: str) -> dict[str, Any]:
    return {"structured": {"working": f"# the brackets hold the datapoints\nexpected = {value}\n"}}


def request(**changes: Any) -> FabricationRequest:
    fields = {
        "orchestration_id": "o1",
        "task_id": "t1",
        "capability": "Extract the datapoints and the threshold from a CloudWatch alarm state reason.",
        "inputs": {"reason": "the state reason text"},
        "examples": [EXAMPLE],
    }
    return FabricationRequest.parse({**fields, **changes})


def fabricator(backends: Backends, pool: SandboxPool, turns: list[dict[str, Any]], **kwargs: Any) -> Fabricator:
    """A Fabricator playing ``turns`` that writes tests first (``settle`` unless ``tests=`` says)."""
    return Fabricator(backends, ScriptedModel(turns), pool, sample_timeout=5, **{"tests": "settle", **kwargs})


def prompt(fab: Fabricator, call: int) -> str:
    requests = fab.generator.model.requests  # type: ignore[attr-defined]
    return "".join(b.get("text", "") for m in requests[call].messages for b in m["content"])


def test_a_draft_that_reproduces_the_example_and_the_tests_is_published(backends: Backends, pool: SandboxPool) -> None:
    tests = case_table_turn(f"assert handler(reason={ONE!r}) == {{'datapoints': [0.5], 'threshold': 0.25}}")
    fab = fabricator(backends, pool, [tests, draft(RIGHT)])
    result = fab.fabricate(request())
    assert result.attempts == 1 and result.examples_passed == 1 and result.report is not None
    example, test = (c for c in result.report.checks if c.name in ("example[0]", "test[0]"))
    assert example.passed and example.input == {"reason": REASON} and example.got["threshold"] == 25.0
    assert example.expected == EXAMPLE["expected"] and "subset" in example.rule
    assert test.passed and test.input == {"reason": ONE}
    agent = backends.registry.get(result.agent.name, 1)
    assert agent.output_schema == OUTPUT and agent.stats.example_checks == 1
    # The tests were written from the capability and the example alone; the draft was asked to pass both.
    assert "def handler" not in prompt(fab, 0) and REASON in prompt(fab, 0)
    assert "The code must pass these tests" in prompt(fab, 1) and ONE in prompt(fab, 1)


def test_a_draft_that_fails_the_example_is_refused_and_told_what_came_back(
    backends: Backends, pool: SandboxPool
) -> None:
    fab = fabricator(backends, pool, [case_table_turn(), draft(WRONG), draft(RIGHT)])
    result = fab.fabricate(request())
    assert result.attempts == 2
    feedback = prompt(fab, 2)
    assert "example[0]" in feedback and REASON in feedback
    assert "$.datapoints: expected 3 items" in feedback and '"threshold": 3.0' in feedback


def test_an_example_no_draft_meets_fails_with_the_comparison_and_publishes_nothing(
    backends: Backends, pool: SandboxPool
) -> None:
    fab = fabricator(backends, pool, [case_table_turn(), draft(WRONG), draft(WRONG)], max_attempts=2)
    with pytest.raises(FabricationFailedError) as failed:
        fab.fabricate(request())
    assert "example[0]" in failed.value.feedback and "expected 3 items" in failed.value.feedback
    assert failed.value.report is not None and failed.value.report.failed[0].got == {
        "datapoints": [3.0],
        "threshold": 3.0,
    }
    assert list(backends.registry.list_agents()) == []


def test_a_wrong_generated_test_is_overruled_by_a_derivation_that_agrees_with_the_code(
    backends: Backends, pool: SandboxPool
) -> None:
    wrong_test = case_table_turn(f"assert handler(reason={ONE!r})['threshold'] == 1.0")  # it is 0.25
    fab = fabricator(backends, pool, [wrong_test, draft(RIGHT), derivation("{'datapoints': [0.5], 'threshold': 0.25}")])
    result = fab.fabricate(request())
    assert result.attempts == 1 and result.report is not None and result.report.passed
    (test,) = [c for c in result.report.checks if c.name == "test[0]"]
    assert not test.passed and "as the code returned, not the test's" in test.overruled
    assert "What must `handler(reason=" in prompt(fab, 2) and "def handler" not in prompt(fab, 2)


def test_a_generated_test_the_derivation_confirms_stands_and_the_draft_is_rewritten(
    backends: Backends, pool: SandboxPool
) -> None:
    right_test = case_table_turn(f"assert handler(reason={ONE!r})['threshold'] == 0.25")
    first_point = RIGHT.replace('"threshold": float(', '"threshold": points[0] or float(')  # 0.5, not 0.25
    turns = [right_test, draft(first_point), derivation("{'threshold': 0.25}"), draft(RIGHT)]
    fab = fabricator(backends, pool, turns)
    result = fab.fabricate(request(examples=[]))
    assert result.attempts == 2
    assert "test[0]" in prompt(fab, 3) and "expected 0.25, got 0.5" in prompt(fab, 3)


def test_strict_tests_are_never_overruled(backends: Backends, pool: SandboxPool) -> None:
    wrong_test = case_table_turn(f"assert handler(reason={ONE!r})['threshold'] == 1.0")
    fab = fabricator(backends, pool, [wrong_test, draft(RIGHT)], tests="strict", max_attempts=1)
    with pytest.raises(FabricationFailedError, match=r"test\[0\]"):
        fab.fabricate(request())
    assert fab.generator.model.calls == 2  # type: ignore[attr-defined]  # no derivation asked


def existing(backends: Backends, code: str) -> AgentManifest:
    manifest = AgentManifest(
        name="reason_reader",
        version=1,
        description="Extract the datapoints and the threshold from a CloudWatch alarm state reason.",
        input_schema=SCHEMA,
        output_schema=OUTPUT,
        code=backends.code_store.put(code.encode()),
    )
    return backends.registry.put(manifest).record


def test_an_agent_that_fails_the_example_is_not_reused(backends: Backends, pool: SandboxPool) -> None:
    existing(backends, WRONG)
    fab = fabricator(backends, pool, [case_table_turn(), draft(RIGHT)])
    result = fab.fabricate(request())
    assert not result.reused and result.agent.name == "alarm_reason_reader"
    assert backends.registry.get("reason_reader", 1).stats.example_checks == 0


def test_an_agent_that_passes_the_example_is_reused_and_its_checks_counted(
    backends: Backends, pool: SandboxPool
) -> None:
    present = existing(backends, RIGHT)
    fab = fabricator(backends, pool, [])  # any model call would raise
    for _ in range(2):
        result = fab.fabricate(request())
        assert result.reused and result.agent.ref == present.ref and result.examples_passed == 1
    assert backends.registry.get("reason_reader", 1).stats.example_checks == 2


@pytest.mark.parametrize(
    ("examples", "message"),
    [
        ([{"input": {"text": REASON}, "expected": 1}], "examples[0].input has the field 'text'"),
        ([{"input": {}, "expected": 1}], "examples[0].input lacks the input 'reason'"),
        ([{"input": "a reason", "expected": 1}], "examples.0.input"),
        ([EXAMPLE] * 6, "at most 5"),
    ],
)
def test_examples_that_do_not_fit_the_inputs_are_refused_naming_the_field(examples: list[Any], message: str) -> None:
    with pytest.raises(RecordValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        request(examples=examples)


def test_a_request_of_the_first_schema_version_is_still_read() -> None:
    old = {"schema": "arbiter.fabrication/1", "orchestration_id": "o", "task_id": "t", "capability": "Count words."}
    parsed = FabricationRequest.parse(old)
    assert parsed.examples == [] and parsed.capability == "Count words."
    assert request().to_dict()["schema"] == "arbiter.fabrication/3"


def test_a_refused_draft_is_shown_again_with_what_to_fix(backends: Backends, pool: SandboxPool) -> None:
    fab = fabricator(backends, pool, [case_table_turn(), draft(WRONG), draft(RIGHT)])
    fab.fabricate(request())
    assert "Your previous code:" in prompt(fab, 2) and WRONG.strip() in prompt(fab, 2)
    assert "Your previous code:" not in prompt(fab, 1)


def test_draft_04_exclusive_bounds_are_read_as_2020_12_ones(backends: Backends, pool: SandboxPool) -> None:
    old_style = {
        "type": "object",
        "properties": {
            "threshold": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "datapoints": {"type": "array", "maxItems": 10, "exclusiveMaximum": False},
        },
    }
    fab = fabricator(backends, pool, [case_table_turn(), draft(RIGHT, output_schema=old_style)])
    agent = fab.fabricate(request()).agent
    assert agent.output_schema is not None
    assert agent.output_schema["properties"]["threshold"] == {"type": "number", "exclusiveMinimum": 0}
    assert agent.output_schema["properties"]["datapoints"] == {"type": "array", "maxItems": 10}


def test_a_draft_that_repeats_refused_code_is_not_checked_again_and_the_next_starts_from_scratch(
    backends: Backends, pool: SandboxPool
) -> None:
    relaid = WRONG.replace("    first =", "    # the same program, laid out again\n    first =")
    fab = fabricator(backends, pool, [case_table_turn(), draft(WRONG), draft(relaid), draft(RIGHT)])
    result = fab.fabricate(request())
    assert result.attempts == 3 and result.report is not None and result.report.passed
    assert "Your previous code" in prompt(fab, 2)  # the refused draft is shown once, to be fixed
    assert "repeated code that was already refused" in prompt(fab, 3) and "Your previous code" not in prompt(fab, 3)
    assert "example[0]" in prompt(fab, 3)  # the evidence of the refusal is still given


# Misses a threshold with a decimal point and returns nulls, as a small model's draft did: the output breaks the
# schema too, but what was expected is what tells the model what to fix.
INTEGER_ONLY = """import re


def handler(reason: str) -> dict:
    found = re.search(r"threshold \\((\\d+)\\)", reason)
    if not found:
        return {"datapoints": [], "threshold": None}
    return {"datapoints": [], "threshold": float(found.group(1))}
"""


def test_an_example_whose_output_also_breaks_the_schema_is_told_what_was_expected_first(
    backends: Backends, pool: SandboxPool
) -> None:
    fab = fabricator(backends, pool, [case_table_turn(), draft(INTEGER_ONLY), draft(RIGHT)])
    assert fab.fabricate(request()).attempts == 2
    feedback = prompt(fab, 2).split("Fix exactly this")[1]
    expected = feedback.index('expected {"datapoints": [41.0, 57.0, 66.0], "threshold": 25.0}')
    assert expected < feedback.index("it also does not match the output schema at threshold")


def test_the_same_code_refused_for_its_schema_is_checked_again_with_a_complete_one(
    backends: Backends, pool: SandboxPool
) -> None:
    broken = draft(RIGHT, input_schema={"type": "array"})
    fab = fabricator(backends, pool, [case_table_turn(), broken, draft(RIGHT)])
    result = fab.fabricate(request())
    assert result.attempts == 2 and result.report is not None and result.report.passed


def test_an_input_schema_without_its_type_is_read_as_an_object(backends: Backends, pool: SandboxPool) -> None:
    untyped = draft(RIGHT, input_schema={"properties": SCHEMA["properties"], "required": ["reason"]})
    result = fabricator(backends, pool, [case_table_turn(), untyped]).fabricate(request())
    assert result.attempts == 1 and result.agent.input_schema["type"] == "object"


# Vote: candidates written apart settle a disagreement with a generated test.


def test_two_candidates_that_agree_outvote_a_wrong_generated_test(backends: Backends, pool: SandboxPool) -> None:
    wrong_test = case_table_turn(f"assert handler(reason={ONE!r})['threshold'] == 1.0")  # it is 0.25
    fab = fabricator(
        backends,
        pool,
        [wrong_test, draft(RIGHT), draft(RIGHT.replace("float(v) for v in", "float(x) for x in"))],
        tests="vote",
    )
    result = fab.fabricate(request())
    assert result.attempts == 2 and result.report is not None and result.report.passed
    (test,) = [c for c in result.report.checks if c.name == "test[0]"]
    assert not test.passed and test.overruled.startswith("outvoted: two candidates written apart both returned")
    # The second candidate was asked with the first prompt again (no feedback to fix): a sample, not a repair.
    assert prompt(fab, 2) == prompt(fab, 1) and "refused" not in prompt(fab, 2)
    assert backends.code_store.get(result.agent.code.sha256).decode() == RIGHT  # the first of the two


def test_candidates_that_disagree_publish_nothing_and_say_where(backends: Backends, pool: SandboxPool) -> None:
    wrong_test = case_table_turn(f"assert handler(reason={ONE!r})['threshold'] == 1.0")
    first_point = RIGHT.replace('"threshold": float(', '"threshold": points[0] if "1 datapoint" in reason else float(')
    fab = fabricator(backends, pool, [wrong_test, draft(RIGHT), draft(first_point)], tests="vote", max_attempts=2)
    with pytest.raises(FabricationFailedError) as failed:
        fab.fabricate(request())
    assert "no two of them agreed" in failed.value.feedback
    assert '"threshold": 0.25' in failed.value.feedback and '"threshold": 0.5' in failed.value.feedback
    assert list(backends.registry.list_agents()) == []


def test_a_crash_on_a_generated_input_is_refused_but_a_deliberate_refusal_is_not(
    backends: Backends, pool: SandboxPool
) -> None:
    empty = case_table_turn("assert handler(reason='')['threshold'] == 0.0")
    refuses = RIGHT.replace(
        "    points =",
        "    if not reason:\n        raise ValueError('an empty reason has no datapoints')\n    points =",
    )
    fab = fabricator(
        backends, pool, [empty, draft(RIGHT), draft(refuses), draft(refuses.replace("an empty", "no"))], tests="vote"
    )
    result = fab.fabricate(request())
    # RIGHT crashes on "" (AttributeError: no match): refused and told; the deliberate ValueError is a vote's answer.
    assert "AttributeError" in prompt(fab, 2) and result.attempts == 3
    assert backends.code_store.get(result.agent.code.sha256).decode() == refuses


def test_a_sampled_draft_is_asked_under_a_sampling_block(backends: Backends, pool: SandboxPool) -> None:
    wrong_test = case_table_turn(f"assert handler(reason={ONE!r})['threshold'] == 1.0")
    turns = [wrong_test, draft(RIGHT), draft(RIGHT.replace("float(v) for v in", "float(x) for x in"))]
    model = RecordingModel(turns)
    Fabricator(backends, model, pool, sample_timeout=5, tests="vote").fabricate(request())
    seen = model.sampling
    assert seen[:2] == [None, None] and seen[2] is not None and seen[2].temperature > 0


def test_the_tests_mode_comes_from_the_argument_then_the_environment_then_off(
    backends: Backends, pool: SandboxPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARBITER_FABRICATOR_TESTS", raising=False)
    assert Fabricator(backends, ScriptedModel([]), pool).tests == "off"
    monkeypatch.setenv("ARBITER_FABRICATOR_TESTS", "vote")
    assert Fabricator(backends, ScriptedModel([]), pool).tests == "vote"
    assert Fabricator(backends, ScriptedModel([]), pool, tests="strict").tests == "strict"
    monkeypatch.setenv("ARBITER_FABRICATOR_TESTS", "sometimes")
    with pytest.raises(FabricatorError, match="ARBITER_FABRICATOR_TESTS must be one of vote, settle, strict, off"):
        Fabricator(backends, ScriptedModel([]), pool)


class CodeFirstModel(ScriptedModel):
    """A ScriptedModel that writes a structured answer's code first, as the local model does: a code field the
    caller checks (``wrapper.field_checks``) and refuses ends the answer there."""

    async def structured_output(  # type: ignore[override]
        self, output_model: Any, prompt: Any, system_prompt: str | None = None, **kwargs: Any
    ) -> Any:
        async for event in super().structured_output(output_model, prompt, system_prompt, **kwargs):
            code = getattr(event.get("output"), "code", None)
            check = current_field_checks().get("code")
            problem = None if code is None or check is None else check(code)
            if problem is not None:
                raise FieldRefused("code", code, problem)
            yield event


def test_code_that_fails_an_example_is_refused_before_the_rest_of_the_draft_is_written(
    backends: Backends, pool: SandboxPool
) -> None:
    # Only the code of the first draft counts: a code-first model would not have written its name or schemas.
    fab = Fabricator(
        backends, CodeFirstModel([draft(WRONG, name="never_written"), draft(RIGHT)]), pool, sample_timeout=5
    )
    result = fab.fabricate(request())
    assert result.attempts == 2 and result.agent.name == "alarm_reason_reader"
    feedback = prompt(fab, 1)
    assert "Your previous code" in feedback and "example[0]" in feedback and "expected 3 items" in feedback
    assert result.report is not None and [c.name for c in result.report.checks][:6] == [
        "policy",
        "compile",
        "names",
        "schema",
        "output_schema",
        "signature",
    ]


def test_code_refused_early_on_every_attempt_fails_with_the_comparison_and_publishes_nothing(
    backends: Backends, pool: SandboxPool
) -> None:
    uses_os = "import os\n\n\ndef handler(reason: str) -> dict:\n    return {'cwd': os.getcwd()}\n"
    fab = Fabricator(backends, CodeFirstModel([draft(uses_os), draft(WRONG)]), pool, sample_timeout=5, max_attempts=2)
    with pytest.raises(FabricationFailedError) as failed:
        fab.fabricate(request())
    assert "policy" in prompt(fab, 1)  # the first refusal was the policy's, before anything ran
    report = failed.value.report
    assert report is not None and [c.name for c in report.checks] == ["policy", "compile", "names", "example[0]"]
    assert report.failed[0].got == {"datapoints": [3.0], "threshold": 3.0}
    assert "expected 3 items" in failed.value.feedback and list(backends.registry.list_agents()) == []


def test_code_refused_early_and_written_again_is_not_checked_again(backends: Backends, pool: SandboxPool) -> None:
    model = CodeFirstModel([draft(WRONG), draft(WRONG + "\n# again\n"), draft(RIGHT)])
    fab = Fabricator(backends, model, pool, sample_timeout=5)
    result = fab.fabricate(request())
    assert result.attempts == 3
    assert "repeated code that was already refused" in prompt(fab, 2) and "Your previous code" not in prompt(fab, 2)


def test_a_refused_fix_is_followed_by_a_sampled_draft_from_scratch(backends: Backends, pool: SandboxPool) -> None:
    other_wrong = WRONG.replace("[0]", "[-1]")  # another program, as wrong
    model = RecordingModel([draft(WRONG), draft(other_wrong), draft(RIGHT)])
    fab = Fabricator(backends, model, pool, sample_timeout=5)
    result = fab.fabricate(request())
    seen = model.sampling
    assert result.attempts == 3
    assert "Your previous code" in prompt(fab, 1) and seen[1] is None  # the first refusal: its code, to fix
    third = prompt(fab, 2)
    assert "Your previous code" not in third and "Your last two drafts were refused" in third  # the fix failed too
    assert "example[0]" in third and seen[2] is not None and seen[2].temperature > 0


def test_a_request_with_examples_asks_for_no_sample_inputs(backends: Backends, pool: SandboxPool) -> None:
    with_samples = draft(RIGHT, sample_inputs=[{"reason": REASON}])
    fab = Fabricator(backends, ScriptedModel([with_samples]), pool, sample_timeout=5)
    result = fab.fabricate(request())
    asked = fab.generator.model.requests[0].output_model  # type: ignore[attr-defined]
    assert "sample_inputs" not in asked.model_json_schema()["properties"]
    assert result.report is not None and not any(c.name.startswith("sample[") for c in result.report.checks)

    fab = Fabricator(memory_backends(), ScriptedModel([with_samples]), pool, sample_timeout=5)
    result = fab.fabricate(request(examples=[]))
    asked = fab.generator.model.requests[0].output_model  # type: ignore[attr-defined]
    assert "sample_inputs" in asked.model_json_schema()["properties"]
    assert result.report is not None and "sample[0]" in [c.name for c in result.report.checks]
