"""What the Fabricator's model is shown: a shape written for the request, never a worked example of another task."""

from __future__ import annotations

import ast

from blackboard import FabricationRequest
from fabricator.cases import Case, examples_of
from fabricator.prompts import request_prompt, skeleton, system_prompt


def _request(**fields: object) -> FabricationRequest:
    return FabricationRequest(orchestration_id="o", task_id="t", capability="Count vowels.", **fields)  # type: ignore[arg-type]


def test_the_shape_has_the_declared_inputs_and_the_examples_fields() -> None:
    request = _request(
        inputs={"text": "the text", "limit": "at most this many"},
        examples=[{"input": {"text": "ab", "limit": 3}, "expected": {"vowels": 1, "text": "ab", "class": "x"}}],
    )
    shape = skeleton(request, examples_of(request.examples))
    tree = ast.parse(shape)
    handler = tree.body[0]
    assert isinstance(handler, ast.FunctionDef)
    assert [a.arg for a in handler.args.args] == ["text", "limit"]
    assert [ast.unparse(a.annotation) for a in handler.args.args if a.annotation] == ["str", "int"]
    returned = handler.body[-1]
    assert isinstance(returned, ast.Return) and isinstance(returned.value, ast.Dict)
    assert [ast.literal_eval(k) for k in returned.value.keys if k is not None] == ["vowels", "text", "class"]
    # No returned field shadows an input, and none is a keyword.
    assert [ast.unparse(v) for v in returned.value.values] == ["vowels", "text_out", "field_class"]


def test_a_plain_expected_value_gives_its_type_and_no_fields() -> None:
    request = _request(inputs={"n": "a number"})
    cases = [Case(input={"n": 2}, expected=4, origin="example")]
    assert skeleton(request, cases).splitlines()[0] == "def handler(n: int) -> int:"
    assert skeleton(request).splitlines()[0] == "def handler(n):"


def test_the_first_prompt_shows_the_shape_and_a_retry_shows_the_previous_code_instead() -> None:
    request = _request(inputs={"text": "t"}, examples=[{"input": {"text": "a"}, "expected": {"vowels": 1}}])
    cases = examples_of(request.examples)
    first = request_prompt(request, [], cases=cases)
    assert 'return {"vowels": vowels}' in first
    assert 'assert handler(text="a") == {"vowels": 1}' in first
    retry = request_prompt(request, [], feedback="example[0] failed", cases=cases, previous="def handler(text): ...")
    assert "Write the module in this shape" not in retry
    assert "def handler(text): ..." in retry


def test_the_system_prompt_has_no_module_of_another_task_to_copy() -> None:
    assert "return {" not in system_prompt()
    assert "```" not in system_prompt()
