from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blackboard.exceptions import ConfigurationError, PatternError
from blackboard.patterns import matches, validate_pattern

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "Task Completed",
    "source": "arbiter.planner",
    "account": "123456789012",
    "time": "2024-05-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:a", "arn:b"],
    "detail": {
        "severity": 5,
        "ratio": 0.5,
        "neg": -3,
        "code": "5",
        "one": 1,
        "zero": 0,
        "flag": True,
        "off": False,
        "nothing": None,
        "empty": "",
        "state": "running",
        "service": "EventBridge",
        "file": "Report.PNG",
        "path": "/usr/lib/x.so",
        "star": "a*b",
        "axb": "axb",
        "ip": "10.0.0.7",
        "ip6": "2001:db8::1",
        "tags": ["red", "blue"],
        "mono": ["red"],
        "counts": [1, 20],
        "empty_list": [],
        "obj": {"k": "v"},
        "nested": {"inner": {"level": "deep"}},
    },
}


def d(**leaves: Any) -> dict[str, Any]:
    """Wrap leaves under ``detail`` (keyword names use ``_`` where the event has ``_``)."""
    return {"detail": leaves}


MATCH_CASES: list[Any] = [
    # literals: exact, OR inside the list, case-sensitive, numbers numeric, no type juggling
    pytest.param({"source": ["arbiter.planner"]}, True, id="literal-string"),
    pytest.param({"source": ["other", "arbiter.planner"]}, True, id="literal-any-of-list"),
    pytest.param({"source": ["Arbiter.Planner"]}, False, id="literal-case-sensitive"),
    pytest.param({"source": ["arbiter"]}, False, id="literal-no-substring"),
    pytest.param(d(severity=[5]), True, id="literal-int"),
    pytest.param(d(severity=[5.0]), True, id="literal-5.0-equals-5"),
    pytest.param(d(ratio=[0.5]), True, id="literal-float"),
    pytest.param(d(severity=["5"]), False, id="literal-string-5-not-number-5"),
    pytest.param(d(code=[5]), False, id="literal-number-5-not-string-5"),
    pytest.param(d(code=["5"]), True, id="literal-string-5"),
    pytest.param(d(flag=[True]), True, id="literal-true"),
    pytest.param(d(flag=[1]), False, id="literal-1-not-true"),
    pytest.param(d(one=[True]), False, id="literal-true-not-1"),
    pytest.param(d(one=[1]), True, id="literal-1"),
    pytest.param(d(off=[0]), False, id="literal-0-not-false"),
    pytest.param(d(zero=[False]), False, id="literal-false-not-0"),
    pytest.param(d(off=[False]), True, id="literal-false"),
    pytest.param(d(nothing=[None]), True, id="literal-null"),
    pytest.param(d(nothing=[""]), False, id="literal-empty-string-not-null"),
    pytest.param(d(empty=[""]), True, id="literal-empty-string"),
    pytest.param(d(empty=[None]), False, id="literal-null-not-empty-string"),
    # AND across keys
    pytest.param({"source": ["arbiter.planner"], "detail-type": ["nope"]}, False, id="and-one-key-fails"),
    pytest.param(
        {"source": ["arbiter.planner"], "detail-type": ["Task Completed"], "detail": {"state": ["running"]}},
        True,
        id="and-all-keys-match",
    ),
    pytest.param({}, True, id="empty-pattern-matches-all"),
    # event arrays: a leaf matches when any element does
    pytest.param({"resources": ["arn:b"]}, True, id="array-any-element"),
    pytest.param({"resources": ["arn:c", "arn:a"]}, True, id="array-intersection"),
    pytest.param({"resources": ["arn:c"]}, False, id="array-no-element"),
    pytest.param(d(tags=[{"prefix": "bl"}]), True, id="array-operator-any-element"),
    pytest.param(d(counts=[{"numeric": [">", 10]}]), True, id="array-numeric-any-element"),
    pytest.param(d(counts=[{"numeric": [">", 100]}]), False, id="array-numeric-no-element"),
    pytest.param(d(empty_list=["x"]), False, id="array-empty-matches-no-literal"),
    pytest.param(d(tags=[{"anything-but": "red"}]), True, id="array-anything-but-other-element"),
    pytest.param(d(mono=[{"anything-but": "red"}]), False, id="array-anything-but-only-element"),
    # nesting
    pytest.param(d(nested={"inner": {"level": ["deep"]}}), True, id="nested-three-levels"),
    pytest.param(d(nested={"inner": {"level": ["shallow"]}}), False, id="nested-three-levels-mismatch"),
    pytest.param(d(state={"x": ["y"]}), False, id="nested-into-string"),
    pytest.param(d(obj=["v"]), False, id="leaf-against-object"),
    pytest.param(d(obj={"k": ["v"]}), True, id="nested-object"),
    pytest.param(d(missing={"x": ["y"]}), False, id="nested-missing"),
    # missing keys
    pytest.param(d(missing=["x"]), False, id="missing-literal"),
    pytest.param(d(missing=[None]), False, id="missing-is-not-null"),
    pytest.param(d(missing=[{"anything-but": "x"}]), False, id="missing-anything-but"),
    pytest.param(d(missing=[{"prefix": ""}]), False, id="missing-prefix"),
    pytest.param(d(missing=[{"numeric": [">", 0]}]), False, id="missing-numeric"),
    pytest.param(d(missing=["x", {"exists": False}]), True, id="missing-or-exists-false"),
    pytest.param({"source": ["arbiter.planner"], "nodetail": ["x"]}, False, id="missing-top-level"),
    # prefix
    pytest.param({"time": [{"prefix": "2024-05-01"}]}, True, id="prefix"),
    pytest.param({"time": [{"prefix": "2024-06"}]}, False, id="prefix-mismatch"),
    pytest.param({"time": [{"prefix": ""}]}, True, id="prefix-empty"),
    pytest.param(d(service=[{"prefix": "eventb"}]), False, id="prefix-case-sensitive"),
    pytest.param(d(severity=[{"prefix": "5"}]), False, id="prefix-not-on-number"),
    pytest.param(d(service=[{"prefix": {"equals-ignore-case": "EVENTB"}}]), True, id="prefix-ignore-case"),
    pytest.param(d(service=[{"prefix": {"equals-ignore-case": "bridge"}}]), False, id="prefix-ignore-case-mismatch"),
    # suffix
    pytest.param(d(file=[{"suffix": ".PNG"}]), True, id="suffix"),
    pytest.param(d(file=[{"suffix": ".png"}]), False, id="suffix-case-sensitive"),
    pytest.param(d(file=[{"suffix": {"equals-ignore-case": ".png"}}]), True, id="suffix-ignore-case"),
    pytest.param(d(file=[{"suffix": {"equals-ignore-case": ".jpg"}}]), False, id="suffix-ignore-case-mismatch"),
    pytest.param(d(severity=[{"suffix": "5"}]), False, id="suffix-not-on-number"),
    # equals-ignore-case
    pytest.param(d(state=[{"equals-ignore-case": "RUNNING"}]), True, id="equals-ignore-case"),
    pytest.param(d(state=[{"equals-ignore-case": "RUN"}]), False, id="equals-ignore-case-whole-value"),
    pytest.param(d(code=[{"equals-ignore-case": "5"}]), True, id="equals-ignore-case-string"),
    pytest.param(d(severity=[{"equals-ignore-case": "5"}]), False, id="equals-ignore-case-not-on-number"),
    # wildcard
    pytest.param(d(path=[{"wildcard": "*/lib/*"}]), True, id="wildcard-contains"),
    pytest.param(d(path=[{"wildcard": "*.so"}]), True, id="wildcard-suffix"),
    pytest.param(d(path=[{"wildcard": "/usr/*"}]), True, id="wildcard-prefix"),
    pytest.param(d(path=[{"wildcard": "/*/lib/*.so"}]), True, id="wildcard-several"),
    pytest.param(d(path=[{"wildcard": "*.dll"}]), False, id="wildcard-mismatch"),
    pytest.param(d(path=[{"wildcard": "/usr/lib"}]), False, id="wildcard-matches-whole-value"),
    pytest.param(d(path=[{"wildcard": "/usr/lib/x.s?"}]), False, id="wildcard-question-mark-is-literal"),
    pytest.param(d(star=[{"wildcard": "a\\*b"}]), True, id="wildcard-escaped-star"),
    pytest.param(d(axb=[{"wildcard": "a\\*b"}]), False, id="wildcard-escaped-star-is-literal"),
    pytest.param(d(axb=[{"wildcard": "a*b"}]), True, id="wildcard-star-any-run"),
    pytest.param(d(empty=[{"wildcard": "*"}]), True, id="wildcard-star-matches-empty"),
    pytest.param(d(severity=[{"wildcard": "*"}]), False, id="wildcard-not-on-number"),
    # anything-but
    pytest.param(d(state=[{"anything-but": "initializing"}]), True, id="anything-but"),
    pytest.param(d(state=[{"anything-but": "running"}]), False, id="anything-but-equal"),
    pytest.param(d(state=[{"anything-but": ["stopped", "running"]}]), False, id="anything-but-list-hit"),
    pytest.param(d(state=[{"anything-but": ["stopped", "paused"]}]), True, id="anything-but-list-miss"),
    pytest.param(d(severity=[{"anything-but": 5}]), False, id="anything-but-number"),
    pytest.param(d(severity=[{"anything-but": 5.0}]), False, id="anything-but-number-5.0"),
    pytest.param(d(severity=[{"anything-but": 6}]), True, id="anything-but-other-number"),
    pytest.param(d(severity=[{"anything-but": "5"}]), True, id="anything-but-string-vs-number"),
    pytest.param(d(flag=[{"anything-but": 1}]), True, id="anything-but-1-vs-true"),
    pytest.param(d(nothing=[{"anything-but": None}]), False, id="anything-but-null"),
    pytest.param(d(nothing=[{"anything-but": "x"}]), True, id="anything-but-null-value-is-a-value"),
    pytest.param(d(obj=[{"anything-but": "x"}]), False, id="anything-but-not-on-object"),
    pytest.param(d(state=[{"anything-but": {"prefix": "run"}}]), False, id="anything-but-prefix-hit"),
    pytest.param(d(state=[{"anything-but": {"prefix": "init"}}]), True, id="anything-but-prefix-miss"),
    pytest.param(d(file=[{"anything-but": {"suffix": ".PNG"}}]), False, id="anything-but-suffix-hit"),
    pytest.param(d(file=[{"anything-but": {"suffix": ".png"}}]), True, id="anything-but-suffix-miss"),
    pytest.param(d(state=[{"anything-but": {"equals-ignore-case": "RUNNING"}}]), False, id="anything-but-eic-hit"),
    pytest.param(
        d(state=[{"anything-but": {"equals-ignore-case": ["x", "Running"]}}]), False, id="anything-but-eic-list-hit"
    ),
    pytest.param(d(state=[{"anything-but": {"equals-ignore-case": ["x", "y"]}}]), True, id="anything-but-eic-miss"),
    pytest.param(d(path=[{"anything-but": {"wildcard": "*/lib/*"}}]), False, id="anything-but-wildcard-hit"),
    pytest.param(d(path=[{"anything-but": {"wildcard": ["*/bin/*", "*.dll"]}}]), True, id="anything-but-wildcard-miss"),
    pytest.param(d(severity=[{"anything-but": {"prefix": "5"}}]), True, id="anything-but-prefix-number-value"),
    # exists
    pytest.param(d(state=[{"exists": True}]), True, id="exists-true-present"),
    pytest.param(d(missing=[{"exists": True}]), False, id="exists-true-missing"),
    pytest.param(d(nothing=[{"exists": True}]), True, id="exists-true-null"),
    pytest.param(d(empty_list=[{"exists": True}]), True, id="exists-true-empty-array"),
    pytest.param(d(obj=[{"exists": True}]), False, id="exists-true-object-is-not-leaf"),
    pytest.param({"detail": [{"exists": True}]}, False, id="exists-true-detail-is-not-leaf"),
    pytest.param(d(missing=[{"exists": False}]), True, id="exists-false-missing"),
    pytest.param(d(state=[{"exists": False}]), False, id="exists-false-present"),
    pytest.param(d(nothing=[{"exists": False}]), False, id="exists-false-null-is-present"),
    pytest.param(d(obj=[{"exists": False}]), False, id="exists-false-object-present"),
    pytest.param({"nodetail": {"x": [{"exists": False}]}}, True, id="exists-false-under-missing-parent"),
    pytest.param({"source": {"x": [{"exists": False}]}}, True, id="exists-false-under-string-parent"),
    # numeric
    pytest.param(d(severity=[{"numeric": [">", 0, "<=", 5]}]), True, id="numeric-range-inclusive-top"),
    pytest.param(d(severity=[{"numeric": [">", 0, "<", 5]}]), False, id="numeric-range-exclusive-top"),
    pytest.param(d(severity=[{"numeric": [">", 5]}]), False, id="numeric-gt"),
    pytest.param(d(severity=[{"numeric": [">=", 5]}]), True, id="numeric-ge"),
    pytest.param(d(severity=[{"numeric": ["<", 5]}]), False, id="numeric-lt"),
    pytest.param(d(severity=[{"numeric": ["<=", 5.0]}]), True, id="numeric-le-float-bound"),
    pytest.param(d(severity=[{"numeric": ["=", 5]}]), True, id="numeric-eq"),
    pytest.param(d(severity=[{"numeric": ["=", 4.999]}]), False, id="numeric-eq-mismatch"),
    pytest.param(d(ratio=[{"numeric": [">", 0, "<", 1]}]), True, id="numeric-float-value"),
    pytest.param(d(neg=[{"numeric": ["<", 0]}]), True, id="numeric-negative"),
    pytest.param(d(code=[{"numeric": ["=", 5]}]), False, id="numeric-not-on-string"),
    pytest.param(d(flag=[{"numeric": ["=", 1]}]), False, id="numeric-not-on-bool"),
    pytest.param(d(nothing=[{"numeric": [">", -1]}]), False, id="numeric-not-on-null"),
    pytest.param(d(one=[{"numeric": ["=", 1]}]), True, id="numeric-one"),
    # cidr
    pytest.param(d(ip=[{"cidr": "10.0.0.0/24"}]), True, id="cidr-inside"),
    pytest.param(d(ip=[{"cidr": "10.0.1.0/24"}]), False, id="cidr-outside"),
    pytest.param(d(ip=[{"cidr": "10.0.0.7"}]), True, id="cidr-single-address"),
    pytest.param(d(ip=[{"cidr": "10.0.0.0/8"}]), True, id="cidr-wide"),
    pytest.param(d(ip6=[{"cidr": "2001:db8::/32"}]), True, id="cidr-ipv6"),
    pytest.param(d(ip=[{"cidr": "::/0"}]), False, id="cidr-ipv4-not-in-ipv6"),
    pytest.param(d(state=[{"cidr": "0.0.0.0/0"}]), False, id="cidr-not-an-address"),
    pytest.param(d(severity=[{"cidr": "0.0.0.0/0"}]), False, id="cidr-not-on-number"),
    # $or
    pytest.param({"$or": [{"source": ["x"]}, {"detail-type": ["Task Completed"]}]}, True, id="or-second"),
    pytest.param({"$or": [{"source": ["arbiter.planner"]}, {"detail-type": ["x"]}]}, True, id="or-first"),
    pytest.param({"$or": [{"source": ["x"]}, {"detail-type": ["y"]}]}, False, id="or-none"),
    pytest.param(
        {"source": ["nope"], "$or": [{"source": ["arbiter.planner"]}, {"region": ["us-east-1"]}]},
        False,
        id="or-and-other-key-fails",
    ),
    pytest.param(
        {"source": ["arbiter.planner"], "$or": [{"account": ["1"]}, {"region": ["us-east-1"]}]},
        True,
        id="or-and-other-key-matches",
    ),
    pytest.param(
        d(**{"$or": [{"severity": [{"numeric": [">", 3]}]}, {"state": ["stopped"]}]}), True, id="or-nested-in-detail"
    ),
    pytest.param(
        {"$or": [{"detail": {"state": ["stopped"]}}, {"detail": {"nested": {"inner": {"level": ["deep"]}}}}]},
        True,
        id="or-of-nested-patterns",
    ),
    pytest.param(
        {"$or": [{"source": ["x"]}, {"$or": [{"source": ["y"]}, {"region": ["us-east-1"]}]}]},
        True,
        id="or-inside-or",
    ),
]


@pytest.mark.parametrize(("pattern", "expected"), MATCH_CASES)
def test_matches_documented_cases(pattern: dict[str, Any], expected: bool) -> None:
    validate_pattern(pattern)
    assert matches(pattern, EVENT) is expected


def test_matches_does_not_mutate_inputs() -> None:
    pattern = {"detail": {"tags": [{"anything-but": {"equals-ignore-case": ["X"]}}], "missing": [{"exists": False}]}}
    before = (copy.deepcopy(pattern), copy.deepcopy(EVENT))
    assert matches(pattern, EVENT)
    assert (pattern, EVENT) == before


INVALID_CASES: list[Any] = [
    pytest.param(["source"], "<root>", "must be an object", id="root-not-dict"),
    pytest.param({1: ["x"]}, "<root>", "keys must be strings", id="non-string-key"),
    pytest.param({"source": "x"}, "source", "expected a list of matchers or a nested pattern", id="leaf-not-list"),
    pytest.param({"source": None}, "source", "got null", id="leaf-null"),
    pytest.param({"source": []}, "source", "non-empty list", id="leaf-empty-list"),
    pytest.param({"detail": {}}, "detail", "must not be empty", id="nested-empty"),
    pytest.param(d(severity=[["x"]]), "detail.severity", "literal or an operator object", id="matcher-list"),
    pytest.param(d(severity=[float("nan")]), "detail.severity", "literal or an operator object", id="literal-nan"),
    pytest.param(d(severity=[{}]), "detail.severity", "exactly one key", id="operator-empty"),
    pytest.param(d(severity=[{"prefix": "a", "suffix": "b"}]), "detail.severity", "exactly one key", id="operator-two"),
    pytest.param(d(severity=[{"prefx": "a"}]), "detail.severity", "unknown operator 'prefx'", id="unknown-operator"),
    pytest.param(d(severity=[{"contains": "a"}]), "detail.severity", "unknown operator", id="unsupported-operator"),
    pytest.param(d(a=[{"prefix": 1}]), "detail.a", "prefix needs a string", id="prefix-number"),
    pytest.param(d(a=[{"prefix": ["x"]}]), "detail.a", "prefix needs a string", id="prefix-list"),
    pytest.param(d(a=[{"prefix": {"equals-ignore-case": 1}}]), "detail.a", "prefix needs", id="prefix-eic-number"),
    pytest.param(d(a=[{"prefix": {"other": "x"}}]), "detail.a", "prefix needs", id="prefix-unknown-modifier"),
    pytest.param(d(a=[{"suffix": None}]), "detail.a", "suffix needs a string", id="suffix-null"),
    pytest.param(d(a=[{"equals-ignore-case": 5}]), "detail.a", "equals-ignore-case needs a string", id="eic-number"),
    pytest.param(d(a=[{"wildcard": 5}]), "detail.a", "wildcard needs a string", id="wildcard-number"),
    pytest.param(d(a=[{"wildcard": "a**b"}]), "detail.a", "consecutive '*'", id="wildcard-double-star"),
    pytest.param(d(a=[{"wildcard": "a\\b"}]), "detail.a", "invalid escape", id="wildcard-bad-escape"),
    pytest.param(d(a=[{"wildcard": "ab\\"}]), "detail.a", "invalid escape", id="wildcard-trailing-backslash"),
    pytest.param(d(a=[{"anything-but": []}]), "detail.a", "anything-but needs", id="anything-but-empty-list"),
    pytest.param(d(a=[{"anything-but": [{"x": 1}]}]), "detail.a", "anything-but needs", id="anything-but-list-object"),
    pytest.param(d(a=[{"anything-but": {"numeric": [">", 1]}}]), "detail.a", "anything-but", id="anything-but-numeric"),
    pytest.param(d(a=[{"anything-but": {"prefix": 5}}]), "detail.a", "anything-but", id="anything-but-prefix-number"),
    pytest.param(d(a=[{"anything-but": {"equals-ignore-case": [5]}}]), "detail.a", "anything-but", id="ab-eic-number"),
    pytest.param(d(a=[{"anything-but": {"equals-ignore-case": []}}]), "detail.a", "anything-but", id="ab-eic-empty"),
    pytest.param(d(a=[{"anything-but": {"wildcard": "a**"}}]), "detail.a", "consecutive '*'", id="ab-wildcard-bad"),
    pytest.param(d(a=[{"anything-but": {"prefix": "a", "suffix": "b"}}]), "detail.a", "anything-but", id="ab-two-keys"),
    pytest.param(d(a=[{"exists": "yes"}]), "detail.a", "exists needs true or false, got string", id="exists-string"),
    pytest.param(d(a=[{"exists": 1}]), "detail.a", "exists needs true or false, got number", id="exists-number"),
    pytest.param(d(a=[{"exists": None}]), "detail.a", "exists needs true or false, got null", id="exists-null"),
    pytest.param(d(a=[{"numeric": ">"}]), "detail.a", "numeric needs a list", id="numeric-not-list"),
    pytest.param(d(a=[{"numeric": []}]), "detail.a", "numeric needs a list", id="numeric-empty"),
    pytest.param(d(a=[{"numeric": [">"]}]), "detail.a", "numeric needs a list", id="numeric-no-bound"),
    pytest.param(d(a=[{"numeric": [">", 0, "<"]}]), "detail.a", "numeric needs a list", id="numeric-odd-length"),
    pytest.param(d(a=[{"numeric": [">", 0, "<", 5, "=", 3]}]), "detail.a", "numeric needs", id="numeric-three"),
    pytest.param(d(a=[{"numeric": ["!=", 1]}]), "detail.a", "unknown comparison '!='", id="numeric-bad-op"),
    pytest.param(d(a=[{"numeric": [1, ">"]}]), "detail.a", "unknown comparison 1", id="numeric-swapped"),
    pytest.param(d(a=[{"numeric": [">", "1"]}]), "detail.a", "compares against a string", id="numeric-string"),
    pytest.param(d(a=[{"numeric": [">", True]}]), "detail.a", "compares against a boolean", id="numeric-bool"),
    pytest.param(d(a=[{"numeric": [">", float("inf")]}]), "detail.a", "not a finite number", id="numeric-inf"),
    pytest.param(d(a=[{"cidr": 10}]), "detail.a", "cidr needs a string", id="cidr-number"),
    pytest.param(d(a=[{"cidr": "not-an-ip"}]), "detail.a", "not an IP network", id="cidr-garbage"),
    pytest.param(d(a=[{"cidr": "10.0.0.0/33"}]), "detail.a", "not an IP network", id="cidr-bad-prefix"),
    pytest.param({"$or": {"a": ["b"]}}, "$or", "at least two patterns", id="or-not-list"),
    pytest.param({"$or": [{"a": ["b"]}]}, "$or", "at least two patterns", id="or-one"),
    pytest.param({"$or": [{"a": ["b"]}, "x"]}, "$or[1]", "must be an object", id="or-member-not-dict"),
    pytest.param({"$or": [{}, {"a": ["b"]}]}, "$or[0]", "must not be empty", id="or-member-empty"),
    pytest.param(
        d(**{"$or": [{"x": [{"prefx": "a"}]}, {"y": ["b"]}]}), "detail.$or[0].x", "unknown operator", id="or-nested"
    ),
    pytest.param(
        d(nested={"inner": {"level": [{"numeric": [">"]}]}}), "detail.nested.inner.level", "numeric", id="deep-path"
    ),
]


@pytest.mark.parametrize(("pattern", "path", "fragment"), INVALID_CASES)
def test_validate_pattern_rejects_and_names_path(pattern: Any, path: str, fragment: str) -> None:
    with pytest.raises(PatternError) as caught:
        validate_pattern(pattern)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert fragment in message
    assert isinstance(caught.value, ConfigurationError)


def test_validate_pattern_error_message_example() -> None:
    with pytest.raises(PatternError, match=r"^detail\.severity: unknown operator 'prefx'$"):
        validate_pattern({"detail": {"severity": [{"prefx": "a"}]}})


# --- properties ---------------------------------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
KEYS = st.text(min_size=1, max_size=8).filter(lambda key: key != "$or")
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)
EVENTS = st.dictionaries(KEYS, JSON_VALUES, max_size=6)


def _first_scalar(values: list[Any]) -> tuple[bool, Any]:
    for value in values:
        if isinstance(value, list):
            found, scalar = _first_scalar(value)
            if found:
                return True, scalar
        elif not isinstance(value, dict):
            return True, value
    return False, None


def _literal_pattern(event: dict[str, Any]) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            if sub := _literal_pattern(value):
                pattern[key] = sub
        elif isinstance(value, list):
            found, scalar = _first_scalar(value)
            if found:
                pattern[key] = [scalar]
        else:
            pattern[key] = [value]
    return pattern


@given(EVENTS)
def test_property_literal_pattern_of_event_matches_it(event: dict[str, Any]) -> None:
    pattern = _literal_pattern(event)
    validate_pattern(pattern)
    assert matches(pattern, event)


@given(EVENTS)
def test_property_exists_pattern_of_event_matches_it(event: dict[str, Any]) -> None:
    pattern = {key: [{"exists": True}] for key, value in event.items() if not isinstance(value, dict)}
    pattern["$absent-key"] = [{"exists": False}]
    validate_pattern(pattern)
    assert matches(pattern, event)


@given(SCALARS, SCALARS)
def test_property_anything_but_is_the_negation_of_a_literal(excluded: Any, value: Any) -> None:
    event = {"k": value}
    literal = {"k": [excluded]}
    negated = {"k": [{"anything-but": excluded}]}
    validate_pattern(negated)
    assert matches(negated, event) is not matches(literal, event)
    assert not matches({"k": [{"anything-but": value}]}, event)
    assert matches({"k": [value]}, event)


NUMBERS = st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6, allow_nan=False)


@given(NUMBERS, NUMBERS, NUMBERS)
def test_property_numeric_range_agrees_with_python(value: float, low: float, high: float) -> None:
    pattern = {"n": [{"numeric": [">=", low, "<", high]}]}
    validate_pattern(pattern)
    assert matches(pattern, {"n": value}) is (low <= value < high)
    assert not matches(pattern, {"n": str(value)})


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*")


@given(st.text(alphabet="ab*\\x", max_size=12), st.data())
def test_property_wildcard_with_star_matches_around_a_cut(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    pattern = {"k": [{"wildcard": _escape(text[:start]) + "*" + _escape(text[end:])}]}
    validate_pattern(pattern)
    assert matches(pattern, {"k": text})


@given(st.text(alphabet="ab*\\", max_size=8), st.text(alphabet="ab*\\", max_size=8))
def test_property_wildcard_without_star_is_equality(literal: str, text: str) -> None:
    pattern = {"k": [{"wildcard": _escape(literal)}]}
    validate_pattern(pattern)
    assert matches(pattern, {"k": text}) is (literal == text)


@given(st.text(max_size=12), st.data())
def test_property_every_prefix_and_suffix_matches(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    assert matches({"k": [{"prefix": text[:cut]}]}, {"k": text})
    assert matches({"k": [{"suffix": text[cut:]}]}, {"k": text})
    assert matches({"k": [{"anything-but": {"prefix": text[:cut]}}]}, {"k": text}) is False
