"""Scripted Fabricator turns shared by the scenario tests: the tests it writes first, then its draft; and a scripted
model that records the sampling each call was asked under."""

from __future__ import annotations

from typing import Any

from wrapper.sampling import current_sampling
from wrapper.testing import ScriptedModel

__all__ = ["WORD_COUNT_OUTPUT", "WORD_COUNT_TESTS", "RecordingModel", "case_table_turn"]


class RecordingModel(ScriptedModel):
    """A scripted model that records the sampling asked for on each call (``None``: the most likely answer)."""

    def __init__(self, turns: list[dict[str, Any]]) -> None:
        super().__init__(turns)
        self.sampling: list[Any] = []

    def structured_output(self, *args: Any, **kwargs: Any) -> Any:
        self.sampling.append(current_sampling())
        return super().structured_output(*args, **kwargs)


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
