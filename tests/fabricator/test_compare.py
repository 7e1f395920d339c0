"""How outputs are compared with expected values: subsets of objects, numbers with a tolerance, exact text."""

from __future__ import annotations

from typing import Any

import pytest

from fabricator.compare import compare, shown


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ({"threshold": 25}, {"threshold": 25.0, "datapoints": [41.0]}),  # a subset; 25 == 25.0
        ([41, 57.0], [41.0, 57]),
        (0.1 + 0.2, 0.3),  # within the tolerance
        ({"a": {"b": [1, {"c": "x"}]}}, {"a": {"b": [1, {"c": "x", "d": 2}]}, "e": None}),
        ("héllo ✓", "héllo ✓"),
        (None, None),
        (True, True),
    ],
)
def test_matches(expected: Any, got: Any) -> None:
    assert compare(expected, got).matches


@pytest.mark.parametrize(
    ("expected", "got", "where", "reason"),
    [
        ({"threshold": 25}, {"threshold": 3.0}, "$.threshold", "expected 25, got 3.0"),
        ({"threshold": 25}, {"limit": 25}, "$.threshold", "the field 'threshold' is missing"),
        ([41, 57, 66], [3.0], "$", "expected 3 items"),
        ([1, 2], [1, 3], "$[1]", "expected 2, got 3"),
        (1, True, "$", "expected the number 1, got true"),  # a boolean is never a number
        ("3", 3, "$", 'expected "3", got 3'),
        ({"a": 1}, [1], "$", "expected an object"),
        ("Hello", "hello", "$", 'expected "Hello", got "hello"'),
    ],
)
def test_mismatch_names_where_and_what(expected: Any, got: Any, where: str, reason: str) -> None:
    comparison = compare(expected, got)
    assert not comparison.matches
    assert comparison.where == where
    assert reason in comparison.reason


def test_shown_is_compact_json_and_cut() -> None:
    assert shown({"b": 1, "a": "é"}) == '{"a": "é", "b": 1}'
    assert shown(list(range(1000))).endswith("...") and len(shown(list(range(1000)))) == 303
    assert shown({1, 2}) == "{1, 2}"  # not JSON: shown as Python
