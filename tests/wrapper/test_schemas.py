"""Checking inputs and outputs against an agent's schemas: messages, and the validator cache."""

from __future__ import annotations

from typing import Any

import pytest

from wrapper import schemas
from wrapper.schemas import input_problem, output_problem


def _schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0}}, "required": ["n"]}


def test_a_problem_names_where_the_input_is_wrong() -> None:
    schema = _schema()
    assert input_problem(schema, {"n": 3}) is None
    assert input_problem(schema, {"n": -1}) == "n: -1 is less than the minimum of 0"
    assert input_problem(schema, {}) == "(input): 'n' is a required property"
    assert output_problem({"type": "string"}, 3) == "(output): 3 is not of type 'string'"


def test_the_same_schema_object_is_not_dumped_again(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = _schema()
    input_problem(schema, {"n": 1})
    dumps: list[object] = []
    real = schemas.json.dumps
    monkeypatch.setattr(schemas.json, "dumps", lambda *a, **k: dumps.append(a[0]) or real(*a, **k))
    for n in range(50):
        assert input_problem(schema, {"n": n}) is None
    assert dumps == []
    assert input_problem(_schema(), {"n": 1}) is None  # an equal schema in another object: looked up by content
    assert len(dumps) == 1


def test_a_schema_changed_in_place_is_checked_against_its_new_content() -> None:
    schema = _schema()
    assert input_problem(schema, {"n": 5}) is None
    schema["properties"]["n"]["maximum"] = 4
    assert input_problem(schema, {"n": 5}) == "n: 5 is greater than the maximum of 4"
    del schema["properties"]["n"]["maximum"]
    assert input_problem(schema, {"n": 5}) is None


def test_a_schema_with_values_json_does_not_have_is_found_by_object_too(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = {"type": "object", "properties": {"n": {"enum": (1, 2)}}}  # a tuple: a list once dumped
    assert input_problem(schema, {"n": 1}) is None
    dumps: list[object] = []
    real = schemas.json.dumps
    monkeypatch.setattr(schemas.json, "dumps", lambda *a, **k: dumps.append(a[0]) or real(*a, **k))
    assert input_problem(schema, {"n": 2}) is None
    assert input_problem(schema, {"n": 3}) is not None
    assert dumps == []


def test_the_cache_by_object_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "_RECENT_SCHEMAS", 8)
    kept = [{"type": "object", "properties": {f"f{i}": {"type": "integer"}}} for i in range(40)]
    for schema in kept:
        assert input_problem(schema, {f"f{kept.index(schema)}": "x"}) is not None
    assert len(schemas._recent) <= 8
