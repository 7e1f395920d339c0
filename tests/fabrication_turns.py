"""Scripted Fabricator turns shared by the scenario tests: the tests it writes first, then its draft."""

from __future__ import annotations

from typing import Any

__all__ = ["WORD_COUNT_OUTPUT", "WORD_COUNT_TESTS", "case_table_turn"]


def case_table_turn(*asserts: str) -> dict[str, Any]:
    """The turn that answers the Fabricator's request for tests (written before any code) with ``asserts``."""
    return {"structured": {"tests": "\n".join(asserts) + "\n"}}


#: The output schema of the word counters the scenario drafts write.
WORD_COUNT_OUTPUT: dict[str, Any] = {
    "type": "object",
    "properties": {"words": {"type": "integer"}},
    "required": ["words"],
}
#: The tests written before a word counter: a typical text and the empty one.
WORD_COUNT_TESTS = case_table_turn(
    "assert handler(text='a b') == {'words': 2}", "assert handler(text='') == {'words': 0}"
)
