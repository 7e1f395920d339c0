"""Defects on the edges: a draft that passed its checks is run on probe inputs and refused if it breaks there.

Passing the caller's examples says a worker is right on those inputs. On the inputs next to them — the empty text or
list, zero, a negative number, an accented letter (:mod:`fabricator.probes`) — nothing expected is known, but some
outcomes are wrong whatever the capability means:

- a crash that only a bug raises: ``AttributeError``, ``NameError``, ``UnboundLocalError``, ``TypeError`` on an input
  of the declared types — unless it is about ``None`` (``'NoneType' object has no attribute 'group'``): a search
  that found nothing in an input outside the capability's domain, like an empty alarm text;
- an output that is not JSON;
- no result within the sample timeout.

Not defects: a refusal on purpose (``ValueError``, ``NonRetryableError``...); ``IndexError``, ``KeyError`` and
``ZeroDivisionError``, which careful workers raise too for input outside the capability's domain (an empty list to
summarise); and an output outside the draft's own output schema, such as ``null`` for an empty list the capability
excludes — that is how small models refuse such input, and at run time the executor fails an attempt whose output
breaks the schema (``OutputSchemaMismatch``), so it is never a silent wrong answer. They are counted in the report's
``edges`` check. A probe that does not fit the input schema is not run.

Measured (docs/fabricator.md): over every worker the offline 1.5B model published in the fabrication bench's runs,
the rule refuses one of the 15 distinct wrong ones and none of the 21 right ones (one more, a right worker whose
error branch named an ``sdk`` it never imported, is mended before the checks since); it refuses none of the set's 46
reference handlers. Refusing outputs outside the schema too caught two more wrong workers there, but in a run of the
whole set it fired once, on a right worker, and cost it.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricator.harness import OUTPUT_SCHEMA_ERROR, Check, one_line

__all__ = ["BUG_ERRORS", "defects", "defects_feedback", "outside_schema"]

#: Errors only a bug raises on an input of the declared types.
BUG_ERRORS = frozenset({"AttributeError", "NameError", "UnboundLocalError", "TypeError"})
#: The ``error`` of runs whose outcome is a defect besides the bug errors: not JSON, a hang.
_BROKEN_OUTPUTS = frozenset({"not_json", "timed_out"})
#: In a bug error's message: the handler used what a lookup did not find (``None``), in input it does not cover.
_NOTHING_FOUND = "'NoneType' object"


def defects(checks: Sequence[Check]) -> list[Check]:
    """The probe runs whose outcome is wrong whatever the capability means (see the module docstring)."""
    return [
        c
        for c in checks
        if not c.passed and (c.error in _BROKEN_OUTPUTS or (c.error in BUG_ERRORS and _NOTHING_FOUND not in c.evidence))
    ]


def outside_schema(checks: Sequence[Check]) -> list[Check]:
    """The probe runs whose output breaks the draft's own output schema (not a defect; see the module docstring)."""
    return [c for c in checks if not c.passed and c.error == OUTPUT_SCHEMA_ERROR]


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
