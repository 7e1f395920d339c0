"""Tests written before the code: reading asserts, keeping those that can be checked, derivations."""

from __future__ import annotations

import ast

import pytest

from fabricator.cases import Case, as_assert, parse_literal_assignment, parse_tests, python_literal, usable_tests

TESTS = """
# typical
assert handler(text="a b") == {"count": 2}
assert handler(text="")["count"] == 0
assert {"count": 1} == handler(text="é")
assert handler("x y z") == {"count": 3, "words": ("x", "y", "z")}
result = handler(text="a")
assert result == {"count": 1}
assert handler(text=some_variable) == 1
assert handler(text="a") != 2
assert handler(text=str(1)) == 1
assert handler(text="nan") == float("nan")
"""


def test_asserts_are_read_as_cases_and_the_rest_is_skipped() -> None:
    cases = parse_tests(TESTS, ["text"])
    assert [(c.input, c.expected) for c in cases] == [
        ({"text": "a b"}, {"count": 2}),
        ({"text": ""}, {"count": 0}),  # one field: a subset
        ({"text": "é"}, {"count": 1}),  # the call on the right
        ({"text": "x y z"}, {"count": 3, "words": ["x", "y", "z"]}),  # positional; a tuple is a list
    ]
    assert all(c.origin == "test" for c in cases)


def test_a_broken_source_keeps_the_lines_that_parse() -> None:
    broken = "Here are the tests:\nassert handler(n=1) == 2\nassert handler(n=2) == (\nassert handler(n=3) == 6\n"
    assert [c.input["n"] for c in parse_tests(broken)] == [1, 3]


def test_usable_tests_keep_the_declared_names_new_inputs_and_a_limit() -> None:
    example = Case(input={"text": "a b"}, expected={"count": 2}, origin="example")
    tests = [
        Case(input={"text": "a b"}, expected={"count": 3}, origin="test"),  # the caller answered this input
        Case(input={"txt": "a"}, expected=1, origin="test"),  # another name
        Case(input={"text": "c"}, expected={"count": 1}, origin="test"),
        Case(input={"text": "c"}, expected={"count": 1}, origin="test"),  # a duplicate
        Case(input={"text": "c", "extra": 1}, expected=1, origin="test"),
        *[Case(input={"text": "w " * n}, expected={"count": n}, origin="test") for n in range(2, 9)],
    ]
    kept = usable_tests(tests, ["text"], [example], limit=4)
    assert [c.input["text"] for c in kept] == ["c", "w w ", "w w w ", "w w w w "]
    # Without declared inputs the examples' names count; without either, the first test's.
    assert len(usable_tests(tests, [], [example], limit=10)) == 8
    assert [c.input for c in usable_tests(tests[1:3], [], [])] == [{"txt": "a"}]


def test_as_assert_writes_a_case_back_as_the_model_writes_it() -> None:
    case = Case(input={"text": "é", "n": 2}, expected={"ok": True}, origin="example")
    assert as_assert(case) == 'assert handler(text="é", n=2) == {"ok": True}'
    (parsed,) = parse_tests(as_assert(case))
    assert (parsed.input, parsed.expected) == (case.input, case.expected)


def test_derivation_reads_the_last_literal_assignment() -> None:
    working = "# 3 numbers: 41, 57, 66\n# the latest is 66\nexpected = {'latest': 60}\nexpected = {'latest': 66}\n"
    assert parse_literal_assignment(working, "expected") == (True, {"latest": 66})
    assert parse_literal_assignment("expected = compute()\n", "expected") == (False, None)
    assert parse_literal_assignment("# no result\n", "expected") == (False, None)


def test_a_bounded_test_table_is_cut_at_a_line_end() -> None:
    from wrapper.local_model import _whole_lines

    table = "assert handler(n=1) == 2\nassert handler(n=2) == 4\nassert handler(n=3) =="
    assert _whole_lines(table, 40) == "assert handler(n=1) == 2\n"
    assert _whole_lines(table, 500) == table


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -3.5, "", 'quote " and \\ backslash', "é\n", [], [1, [None, "x"]], {"a": {"b": [True]}}],
)
def test_python_literal_evaluates_back_to_the_json_value(value: object) -> None:
    assert ast.literal_eval(python_literal(value)) == value
