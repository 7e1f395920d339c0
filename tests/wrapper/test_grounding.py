"""Grounded argument values: what the model has seen may run in the same wave; what it made up waits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wrapper.grounding import context_text, invented_values, split_grounded

EVENT = {
    "id": "01M91G7KZ",
    "service": "Café-API",
    "reason": "3 datapoints [41.0, 57.0, 66.0] above the threshold (25.0)",
    "hours": 12,
}
MESSAGES: list[dict[str, Any]] = [
    {"role": "user", "content": [{"text": f"An event arrived:\n{json.dumps(EVENT)}"}]},  # non-ASCII as \\u escapes
    {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "deploys", "input": {"service": "x"}}}]},
    {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"version": "2026.11.29-1"}}]}}],
    },
]
SPECS = [{"name": "pager", "inputSchema": {"json": {"properties": {"severity": {"enum": ["high", "low"]}}}}}]


@pytest.mark.parametrize(
    "value",
    [
        "café-api",  # escaped in the JSON text, another case
        "datapoints  [41.0, 57.0,\n66.0]",  # other whitespace
        41,
        66.0,
        25,
        12,
        "2026.11.29-1",  # from a tool result
        "high",  # an enum of a tool offered
        {"nested": ["checkout" if False else "Café-API", True, None, ""]},
    ],
)
def test_values_the_model_has_seen_are_grounded(value: Any) -> None:
    assert invented_values(value, context_text(MESSAGES, "Be brief.", SPECS)) == []


@pytest.mark.parametrize("value", ["1.2.3", 7, 2, 41.5, "cafe", "checkout-api is failing after 2026.11.29-1", "y"])
def test_values_the_model_made_up_are_invented(value: Any) -> None:
    assert invented_values(value, context_text(MESSAGES, "Be brief.", SPECS)) == [value]


def test_the_first_call_runs_and_later_ones_only_when_grounded() -> None:
    context = context_text(MESSAGES, None, [])
    calls = [{"summary": "made up"}, {"service": "café-api"}, {"version": "9.9.9"}]
    run, deferred = split_grounded(calls, lambda call: call, context)
    assert run == calls[:2] and deferred == calls[2:]
