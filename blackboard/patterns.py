"""EventBridge-style event pattern matching for the in-process event bus.

A pattern is a dict shaped like the events it selects. A key whose value is a dict descends into the event; a key
whose value is a list is a leaf that matches when the event value matches any matcher in the list (and, for an event
array, when any element does). All keys must match. Matchers are JSON literals or single-operator dicts: ``prefix``,
``suffix``, ``equals-ignore-case``, ``wildcard``, ``anything-but``, ``exists``, ``numeric`` and ``cidr``; a ``$or``
key holds a list of alternative sub-patterns. See "Content filtering in Amazon EventBridge event patterns".

Call :func:`validate_pattern` once when a subscription is created; :func:`matches` trusts its input and runs per
publish, so it does no checking.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from blackboard.exceptions import PatternError

__all__ = ["matches", "validate_pattern"]

_MISSING = object()
# A missing or non-object value is matched as an empty object so that a nested ``exists: false`` still matches,
# as it does in EventBridge where the event is flattened to leaf paths before matching.
_EMPTY: Mapping[str, Any] = {}
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_IGNORE_CASE = "equals-ignore-case"
_KINDS = {"NoneType": "null", "bool": "boolean", "int": "number", "float": "number", "str": "string", "dict": "object"}


def _same(literal: object, value: object) -> bool:
    # bool is an int subclass in Python, but JSON true is not the number 1 (while 5 and 5.0 are the same number).
    return literal == value and (type(literal) is bool) == (type(value) is bool)


@functools.lru_cache(maxsize=1024)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "*":
            parts.append(".*")
        else:
            parts.append(re.escape(next(chars) if char == "\\" else char))
    return re.compile("".join(parts), re.DOTALL)


@functools.lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def _affix(method: Callable[[str, str], bool]) -> Callable[[Any, object], bool]:
    def test(arg: Any, value: object) -> bool:
        if not isinstance(value, str):
            return False
        if isinstance(arg, str):
            return method(value, arg)
        folded: str = arg[_IGNORE_CASE]
        return method(value.casefold(), folded.casefold())

    return test


def _equals_ignore_case(arg: str, value: object) -> bool:
    return isinstance(value, str) and value.casefold() == arg.casefold()


def _wildcard(arg: str, value: object) -> bool:
    return isinstance(value, str) and _wildcard_regex(arg).fullmatch(value) is not None


def _numeric(arg: list[Any], value: object) -> bool:
    if type(value) is bool or not isinstance(value, int | float):
        return False
    return all(_COMPARISONS[arg[i]](value, arg[i + 1]) for i in range(0, len(arg), 2))


def _cidr(arg: str, value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_address(value) in _network(arg)
    except ValueError:
        return False


def _anything_but(arg: Any, value: object) -> bool:
    if isinstance(value, Mapping):
        return False
    if isinstance(arg, dict):
        ((op, operand),) = arg.items()
        test = _OPERATORS[op]
        return not any(test(item, value) for item in (operand if isinstance(operand, list) else [operand]))
    if isinstance(arg, list):
        return not any(_same(item, value) for item in arg)
    return not _same(arg, value)


_OPERATORS: dict[str, Callable[[Any, object], bool]] = {
    "prefix": _affix(str.startswith),
    "suffix": _affix(str.endswith),
    _IGNORE_CASE: _equals_ignore_case,
    "wildcard": _wildcard,
    "numeric": _numeric,
    "cidr": _cidr,
    "anything-but": _anything_but,
}


def _any_element(test: Callable[[Any, object], bool], arg: Any, value: object) -> bool:
    if isinstance(value, list):
        return any(_any_element(test, arg, item) for item in value)
    return test(arg, value)


def _match_leaf(matchers: list[Any], value: object) -> bool:
    for matcher in matchers:
        if isinstance(matcher, dict):
            ((op, arg),) = matcher.items()
            if op == "exists":
                # exists looks at the key as a whole, so an array (even empty) counts as present.
                hit = arg is True and not isinstance(value, Mapping)
            else:
                hit = _any_element(_OPERATORS[op], arg, value)
        else:
            hit = _any_element(_same, matcher, value)
        if hit:
            return True
    return False


def _match(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    for key, sub in pattern.items():
        if isinstance(sub, list):
            if key == "$or":
                if not any(_match(alternative, event) for alternative in sub):
                    return False
                continue
            value = event.get(key, _MISSING)
            if value is _MISSING:
                if not any(isinstance(m, dict) and m.get("exists") is False for m in sub):
                    return False
            elif not _match_leaf(sub, value):
                return False
        else:
            nested = event.get(key)
            if not _match(sub, nested if isinstance(nested, Mapping) else _EMPTY):
                return False
    return True


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Tell whether an event matches a pattern.

    Args:
        pattern: a pattern already accepted by :func:`validate_pattern` (it is not checked again).
        event: the full event envelope as on the wire (``source``, ``detail-type``, ``detail``...).

    Returns:
        True if every key of the pattern matches the event.
    """
    return _match(pattern, event)


def _kind(value: object) -> str:
    name = type(value).__name__
    return _KINDS.get(name, name)


def _is_number(value: object) -> bool:
    # Python ints are unbounded and never NaN; math.isfinite would overflow on huge ones.
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value)
    )


def _is_literal(value: object) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)


def _check_affix(arg: object) -> str | None:
    if isinstance(arg, str):
        return None
    if isinstance(arg, dict) and arg.keys() == {_IGNORE_CASE} and isinstance(arg[_IGNORE_CASE], str):
        return None
    return f'needs a string or {{"{_IGNORE_CASE}": string}}, got {_kind(arg)}'


def _check_wildcard(arg: object) -> str | None:
    if not isinstance(arg, str):
        return f"needs a string, got {_kind(arg)}"
    index = 0
    while index < len(arg):
        if arg[index] == "\\":
            if arg[index + 1 : index + 2] not in ("*", "\\"):
                return f"has an invalid escape at position {index} (only \\* and \\\\ are allowed)"
            index += 1
        elif arg.startswith("**", index):
            return f"has consecutive '*' at position {index}"
        index += 1
    return None


def _check_anything_but(arg: object) -> str | None:
    if _is_literal(arg) or (isinstance(arg, list) and arg and all(_is_literal(item) for item in arg)):
        return None
    if isinstance(arg, dict) and len(arg) == 1:
        ((op, operand),) = arg.items()
        if op in ("prefix", "suffix") and isinstance(operand, str):
            return None
        items = operand if isinstance(operand, list) and operand else [operand]
        if op in (_IGNORE_CASE, "wildcard") and all(isinstance(item, str) for item in items):
            problems = [_check_wildcard(item) for item in items] if op == "wildcard" else []
            return next((f"wildcard {problem}" for problem in problems if problem), None)
    return f"needs a literal, a non-empty list of literals, or one of prefix/suffix/{_IGNORE_CASE}/wildcard"


def _check_numeric(arg: object) -> str | None:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        return "needs a list of one or two (comparison, number) pairs, e.g. ['>', 0, '<=', 5]"
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if not isinstance(op, str) or op not in _COMPARISONS:
            return f"has unknown comparison {op!r} (use one of {', '.join(_COMPARISONS)})"
        if not _is_number(bound):
            return f"compares against a {_kind(bound)}, not a finite number"
    return None


def _check_cidr(arg: object) -> str | None:
    if not isinstance(arg, str):
        return f"needs a string, got {_kind(arg)}"
    try:
        _network(arg)
    except ValueError:
        return f"{arg!r} is not an IP network"
    return None


_CHECKS: dict[str, Callable[[object], str | None]] = {
    "prefix": _check_affix,
    "suffix": _check_affix,
    _IGNORE_CASE: lambda arg: None if isinstance(arg, str) else f"needs a string, got {_kind(arg)}",
    "wildcard": _check_wildcard,
    "anything-but": _check_anything_but,
    "exists": lambda arg: None if isinstance(arg, bool) else f"needs true or false, got {_kind(arg)}",
    "numeric": _check_numeric,
    "cidr": _check_cidr,
}


def _check_matcher(matcher: object, path: str) -> None:
    if _is_literal(matcher):
        return
    if not isinstance(matcher, dict):
        raise PatternError(f"{path}: a matcher must be a literal or an operator object, got {_kind(matcher)}")
    if len(matcher) != 1:
        raise PatternError(f"{path}: an operator object needs exactly one key, got {len(matcher)}")
    ((op, arg),) = matcher.items()
    check = _CHECKS.get(op)
    if check is None:
        raise PatternError(f"{path}: unknown operator {op!r}")
    if problem := check(arg):
        raise PatternError(f"{path}: {op} {problem}")


def _check_pattern(pattern: object, path: str) -> None:
    if not isinstance(pattern, Mapping):
        raise PatternError(f"{path or '<root>'}: a pattern must be an object, got {_kind(pattern)}")
    if not pattern and path:
        raise PatternError(f"{path}: a nested pattern must not be empty")
    for key, sub in pattern.items():
        if not isinstance(key, str):
            raise PatternError(f"{path or '<root>'}: pattern keys must be strings, got {key!r}")
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(sub, list) or len(sub) < 2:
                raise PatternError(f"{where}: needs a list of at least two patterns")
            for index, alternative in enumerate(sub):
                _check_pattern(alternative, f"{where}[{index}]")
        elif isinstance(sub, list):
            if not sub:
                raise PatternError(f"{where}: a leaf needs a non-empty list of matchers")
            for matcher in sub:
                _check_matcher(matcher, where)
        elif isinstance(sub, Mapping):
            _check_pattern(sub, where)
        else:
            raise PatternError(f"{where}: expected a list of matchers or a nested pattern, got {_kind(sub)}")


def validate_pattern(pattern: Mapping[str, Any]) -> None:
    """Check that a pattern is well formed, so that :func:`matches` can trust it.

    An empty top-level pattern is allowed and matches every event.

    Args:
        pattern: the pattern to check.

    Raises:
        PatternError: the pattern is malformed; the message starts with the dotted key path of the first fault
            (``detail.severity: unknown operator 'prefx'``).
    """
    _check_pattern(pattern, "")
