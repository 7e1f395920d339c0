"""How a worker's output is compared with an expected value (acceptance examples, generated tests, bench checks).

The rules, applied recursively:

- an ``expected`` object is a **subset**: every field it names must be in the output and match; extra output fields
  are allowed (the caller says what it needs, not everything the worker may add);
- numbers match within a tolerance (relative ``1e-6``, absolute ``1e-9``); ``1`` and ``1.0`` are equal; a boolean
  is never a number;
- lists match element by element and must have the same length;
- strings, booleans and ``null`` match only exactly (JSON equality).

:func:`compare` returns the first mismatch with its path, so that the evidence says exactly what was wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RULE", "Comparison", "compare", "shown"]

#: One line naming the rule, written into every check's evidence.
RULE = "expected fields as a subset of an object, numbers within 1e-6 relative, everything else JSON-equal"

_REL_TOLERANCE = 1e-6
_ABS_TOLERANCE = 1e-9
_SHOWN = 300


@dataclass(frozen=True)
class Comparison:
    """The outcome of one comparison.

    Attributes:
        matches: whether ``got`` meets ``expected``.
        where: the path of the first mismatch (``$`` is the whole value, ``$.threshold``, ``$[2]``), or ``""``.
        reason: what differs there, in words (``""`` when it matches).
    """

    matches: bool
    where: str = ""
    reason: str = ""


def compare(expected: Any, got: Any) -> Comparison:
    """Compare an output with an expected value under the module's rules."""
    return _compare(expected, got, "$")


def shown(value: Any) -> str:
    """A value as compact JSON for evidence and feedback, cut to a few hundred characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(expected: Any, got: Any, where: str) -> Comparison:
    if _is_number(expected):
        if not _is_number(got):
            return Comparison(False, where, f"expected the number {shown(expected)}, got {shown(got)}")
        if math.isclose(float(expected), float(got), rel_tol=_REL_TOLERANCE, abs_tol=_ABS_TOLERANCE):
            return Comparison(True)
        return Comparison(False, where, f"expected {shown(expected)}, got {shown(got)}")
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return Comparison(False, where, f"expected an object with {sorted(expected)}, got {shown(got)}")
        for key, value in expected.items():
            if key not in got:
                return Comparison(False, f"{where}.{key}", f"the field {key!r} is missing (fields: {sorted(got)})")
            inner = _compare(value, got[key], f"{where}.{key}")
            if not inner.matches:
                return inner
        return Comparison(True)
    if isinstance(expected, list):
        if not isinstance(got, list):
            return Comparison(False, where, f"expected a list, got {shown(got)}")
        if len(expected) != len(got):
            return Comparison(
                False, where, f"expected {len(expected)} items {shown(expected)}, got {len(got)} {shown(got)}"
            )
        for index, (item, other) in enumerate(zip(expected, got, strict=True)):
            inner = _compare(item, other, f"{where}[{index}]")
            if not inner.matches:
                return inner
        return Comparison(True)
    if type(expected) is type(got) and expected == got:
        return Comparison(True)
    return Comparison(False, where, f"expected {shown(expected)}, got {shown(got)}")
