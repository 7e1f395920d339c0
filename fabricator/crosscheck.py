"""Cross-checks: a candidate is published only when a second candidate, written apart, answers the probes the same.

Passing the caller's examples says a worker is right *on those inputs*; a small model's draft often misreads a rule
the examples do not exercise (an accented letter, a negative number, an upper-case text). Before it publishes, the
Fabricator samples a second draft from the same prompt (no feedback, another seed), checks it the same way, and runs
both on the probe inputs (:mod:`fabricator.probes`: the examples' and samples' inputs pushed to their edges):

- the second draft is the same program (same syntax tree and schemas): the model wrote it again: they agree;
- both return an output for a probe and the outputs differ (:func:`fabricator.compare.compare`, both ways): the
  capability is read two ways, and nothing is published; the refusal names the input and both outputs;
- a probe that either candidate refused or failed on says nothing about the other's reading, and is left out;
- otherwise they agree: the first is published, with each compared probe as a ``probe[i]`` check in its report.

One dissent refuses: a third candidate that sides with one of two is a majority, not evidence, and with a small
model the majority is often the shared misreading. A second draft that fails its own checks is no vote yet: it gets
its refusal back to fix, like any draft (its reading stays its own); after :data:`PARTNER_DRAFTS` drafts without a
second candidate that passes, the first is refused too, as unconfirmed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fabricator.cases import Case, call_text, input_key
from fabricator.compare import compare, shown
from fabricator.constants import ENV_FABRICATOR_CROSS_CHECK
from fabricator.exceptions import FabricatorError
from fabricator.harness import Candidate, Check
from fabricator.probes import MAX_PROBES, probes

__all__ = ["DEFAULT_CROSS_CHECK", "PARTNER_DRAFTS", "Disagreement", "agreement", "cross_check_enabled", "probe_inputs"]

#: Off by default: with the offline 1.5B model, a second sampled draft shares the first's misreadings too often to
#: catch them, and refuses right drafts it could not confirm (``bench/fabrication_quality.py``; docs/fabricator.md).
DEFAULT_CROSS_CHECK = "off"
#: Drafts written, at most, to find a second candidate that passes every check (a sampled one, then its fix).
PARTNER_DRAFTS = 2

_ON = frozenset({"on", "1", "true", "yes"})
_OFF = frozenset({"off", "0", "false", "no"})


def cross_check_enabled(value: bool | None = None) -> bool:
    """Whether to cross-check: ``value``, else ``ARBITER_FABRICATOR_CROSS_CHECK`` (``on``/``off``), else off.

    Raises:
        FabricatorError: the variable holds something else.
    """
    if value is not None:
        return value
    chosen = (os.environ.get(ENV_FABRICATOR_CROSS_CHECK) or DEFAULT_CROSS_CHECK).strip().lower()
    if chosen in _ON:
        return True
    if chosen in _OFF:
        return False
    raise FabricatorError(f"{ENV_FABRICATOR_CROSS_CHECK} must be on or off, not {chosen!r}")


def probe_inputs(examples: Sequence[Case], candidate: Candidate) -> list[dict[str, Any]]:
    """The inputs both candidates run: the first's sample inputs, then probes from every given input."""
    given = {input_key(case.input) for case in examples}
    samples = [dict(s) for s in candidate.sample_inputs if input_key(s) not in given]
    seeds = [case.input for case in examples] + samples
    return (samples + probes(seeds, limit=MAX_PROBES))[:MAX_PROBES]


@dataclass(frozen=True)
class Disagreement:
    """A probe input on which two candidates that pass every check return different outputs."""

    input: dict[str, Any]
    first: Any
    second: Any

    def feedback(self) -> str:
        """The refusal: what differs, that nothing was published, and how a caller decides it."""
        return (
            "Two candidates written apart pass every check but read the capability differently; nothing was "
            "published:\n"
            f"- probe: {call_text(self.input)} returned {shown(self.first)} from one and {shown(self.second)} from "
            "the other; state the rule for such input in the capability, or add an example with this input"
        )


def agreement(first: Sequence[Check], second: Sequence[Check]) -> tuple[list[Check], Disagreement | None]:
    """Compare two candidates' probe runs (same inputs, same order).

    Returns:
        The probes both answered, as passed checks that say so, and the first disagreement (``None``: none).
    """
    agreed: list[Check] = []
    for mine, theirs in zip(first, second, strict=True):
        if not (mine.passed and theirs.passed) or mine.input is None:
            continue
        if not (compare(mine.got, theirs.got).matches and compare(theirs.got, mine.got).matches):
            return agreed, Disagreement(mine.input, mine.got, theirs.got)
        evidence = f"{mine.evidence}; a second candidate written apart returned the same"
        agreed.append(mine.model_copy(update={"evidence": evidence}))
    return agreed, None
