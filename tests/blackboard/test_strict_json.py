"""The strict JSON boundary: each rule refuses with its reason and position; what passes reads back as it was."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings

from blackboard import ConfigurationError, StrictJsonError
from blackboard.strict_json import (
    DEFAULT_MAX_EVENT_BYTES,
    MAX_DEPTH,
    MAX_INT,
    MIN_INT,
    check,
    dumps,
    loads,
    max_event_bytes,
    max_output_bytes,
)
from tests.hostile_json import hostile_values, nested

LIMIT = 1024 * 1024


@pytest.mark.parametrize(
    ("raw", "reason", "position"),
    [
        (b'{"a": 1,\n "a": 2}', "the key 'a' more than once", "$"),
        (b'{"x": {"source": "a", "source": "b"}}', "the key 'source' more than once", "$.x"),
        (b'{"v": NaN}', "NaN at $.v", "$.v"),
        (b'{"v": [1, -Infinity]}', "-Infinity at $.v[1]", "$.v[1]"),
        (b'{"v": 1e400}', "would be Infinity", "$.v"),
        (b'{"n": ' + b"9" * 5000 + b"}", "(5000 digits) is outside the range", "$.n"),
        (b'{"n": 9223372036854775808}', "is outside the range", "$.n"),
        (b'{"n": -9223372036854775809}', "is outside the range", "$.n"),
        (b'{"t": "caf\\udce9"}', "not valid Unicode (a lone surrogate, '\\udce9' at index 3)", "$.t"),
        (b'{"\\ud800": 1}', "a key in $ is not valid Unicode", "$"),
        (b'{"a":\n  \xff}', "it is not UTF-8 (byte 0xff)", "line 2, byte 3 (offset 8)"),
        (b'{"a": [1, 2}', "it is not valid JSON: Expecting ',' delimiter", "line 1, column 12"),
        (b"[" * 10_000 + b"]" * 10_000, f"it nests deeper than {MAX_DEPTH} levels", f"line 1, column {MAX_DEPTH + 1}"),
        (json.dumps(nested(MAX_DEPTH + 1)).encode(), f"nests deeper than {MAX_DEPTH} levels", "$.k[0].k"),
    ],
)
def test_each_rule_refuses_with_reason_and_position(raw: bytes, reason: str, position: str) -> None:
    with pytest.raises(StrictJsonError) as caught:
        loads(raw, max_bytes=LIMIT, what="event")
    assert reason in caught.value.reason
    assert caught.value.position.startswith(position)
    assert str(caught.value).startswith("event refused: ")
    assert isinstance(caught.value, ValueError)


def test_size_limit_counts_bytes() -> None:
    document = json.dumps({"text": "é" * 100}, ensure_ascii=False)
    assert loads(document, max_bytes=len(document.encode()), what="event") == {"text": "é" * 100}
    with pytest.raises(StrictJsonError, match="is 212 bytes and the limit is 211"):
        loads(document.encode(), max_bytes=len(document.encode()) - 1, what="event")
    with pytest.raises(StrictJsonError, match="limit is 10"):
        check({"text": "x" * 20}, max_bytes=10)


def test_bounds_themselves_pass() -> None:
    value = {"deep": nested(MAX_DEPTH - 1), "ints": [MIN_INT, MAX_INT], "floats": [1e308, -0.0, 5e-324]}
    assert loads(json.dumps(value), max_bytes=LIMIT) == value
    check(value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"x": math.nan}, "nan at $.x"),
        ({"x": [math.inf]}, "inf at $.x[0]"),
        ({"x": 2**63}, "the integer at $.x (19 digits)"),
        ({"x": {1, 2}}, "a value of type set at $.x is not JSON"),
        ({"x": {(1, 2): 3}}, "a key of type tuple in $.x"),
        ({"a b": "\ud83d"}, "the text at $['a b'] is not valid Unicode"),
        (nested(MAX_DEPTH + 1), "nests deeper than 64 levels"),
    ],
)
def test_python_values_are_held_to_the_same_rules(value: Any, words: str) -> None:
    with pytest.raises(StrictJsonError, match="output refused") as caught:
        dumps(value, what="output")
    assert words in str(caught.value)


def test_a_circular_value_is_refused_not_a_crash() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(StrictJsonError, match="nests deeper"):
        check(loop)


def test_limits_resolve_argument_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBITER_MAX_EVENT_BYTES", raising=False)
    assert max_event_bytes() == DEFAULT_MAX_EVENT_BYTES == 262_144
    assert max_output_bytes() == 32 * 1024**2
    monkeypatch.setenv("ARBITER_MAX_EVENT_BYTES", "1000")
    assert (max_event_bytes(), max_event_bytes(50)) == (1000, 50)
    monkeypatch.setenv("ARBITER_MAX_OUTPUT_BYTES", "lots")
    with pytest.raises(ConfigurationError, match="ARBITER_MAX_OUTPUT_BYTES"):
        max_output_bytes()
    with pytest.raises(ConfigurationError, match="at least 1 byte"):
        max_event_bytes(0)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(value=hostile_values())
def test_whatever_passes_reads_back_as_it_was(value: Any) -> None:
    assert loads(dumps(value), max_bytes=LIMIT) == value
    assert loads(dumps(value).encode(), max_bytes=LIMIT) == value


def test_python_keys_that_json_writes_alike_are_refused() -> None:
    check({1: "a", 2: "b", None: "c"})
    for value in ({1: "a", "1": "b"}, {True: 1, "true": 2}, {None: 1, "null": 2}):
        with pytest.raises(StrictJsonError, match="more than once"):
            check(value)
    with pytest.raises(StrictJsonError, match="key in \\$ is an integer outside"):
        check({10**5000: 1})
