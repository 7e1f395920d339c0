"""Defects on the edges: a draft that passed its checks is run on probe inputs and refused if it breaks there.

Passing the caller's examples says a worker is right on those inputs. On the inputs next to them — the empty text or
list, zero, a negative number, an accented letter (:mod:`fabricator.probes`) — nothing expected is known, but some
outcomes are wrong whatever the capability means:

- an output that does not match the draft's own output schema (``null`` where it declared an object), or is not JSON;
- a crash that only a bug raises: ``AttributeError``, ``NameError``, ``UnboundLocalError``, ``TypeError`` on an input
  of the declared types — unless it is about ``None`` (``'NoneType' object has no attribute 'group'``): a search
  that found nothing in an input outside the capability's domain, like an empty alarm text;
- no result within the sample timeout.

A refusal on purpose (``ValueError``, ``NonRetryableError``...) is fine, and so are ``IndexError``, ``KeyError`` and
``ZeroDivisionError``: careful workers raise those too for input outside the capability's domain (an empty list to
summarise). A probe that does not fit the input schema is not run. Measured on every worker the offline model
published in the fabrication bench and on the set's reference handlers (``bench/fabrication_quality.py``;
docs/fabricator.md): the rule refuses none of the references and a fifth of the published-but-wrong workers.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricator.harness import OUTPUT_SCHEMA_ERROR, Check, one_line

__all__ = ["BUG_ERRORS", "defects", "defects_feedback"]

#: Errors only a bug raises on an input of the declared types.
BUG_ERRORS = frozenset({"AttributeError", "NameError", "UnboundLocalError", "TypeError"})
#: The ``error`` of runs whose outcome is a defect besides the bug errors: outside the output schema, not JSON, a hang.
_BROKEN_OUTPUTS = frozenset({OUTPUT_SCHEMA_ERROR, "not_json", "timed_out"})
#: In a bug error's message: the handler used what a lookup did not find (``None``), in input it does not cover.
_NOTHING_FOUND = "'NoneType' object"


def defects(checks: Sequence[Check]) -> list[Check]:
    """The probe runs whose outcome is wrong whatever the capability means (see the module docstring)."""
    return [
        c
        for c in checks
        if not c.passed and (c.error in _BROKEN_OUTPUTS or (c.error in BUG_ERRORS and _NOTHING_FOUND not in c.evidence))
    ]


def defects_feedback(found: Sequence[Check]) -> str:
    """The refusal of a draft that passed its checks but broke on probe inputs, for the model's next attempt."""
    lines = [
        f"The candidate passed its checks but broke on {len(found)} input(s) of the declared types, next to the "
        "examples; fix these and keep what passed:"
    ]
    lines += [f"- {one_line(check.evidence)}" for check in found[:3]]
    lines.append(
        "For every input that fits the input schema, return an output of the output schema, or raise ValueError "
        "for an input the capability does not cover."
    )
    return "\n".join(lines)
