"""The planner turns a model's stream into one assistant message and its tool calls, whatever the model sends."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from strands.models import Model

from arbiter import Planner, PlannerError
from arbiter.prompts import SYSTEM_PROMPT


class RawModel(Model):
    """Streams exactly the events it is given (or raises), to feed the planner malformed output."""

    def __init__(self, events: list[dict[str, Any]] | Exception) -> None:
        self.events = events

    def update_config(self, **config: Any) -> None:
        return None

    def get_config(self) -> dict[str, Any]:
        return {}

    async def structured_output(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        raise NotImplementedError
        yield

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        if isinstance(self.events, Exception):
            raise self.events
        for event in self.events:
            yield event


def tool(name: str, tool_id: str, raw_input: str) -> list[dict[str, Any]]:
    return [
        {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": tool_id}}}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": raw_input}}}},
        {"contentBlockStop": {}},
    ]


def test_tool_calls_text_and_usage() -> None:
    events = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"start": {}}},
        {"contentBlockDelta": {"delta": {"text": "Cooking "}}},
        {"contentBlockDelta": {"delta": {"text": "now."}}},
        {"contentBlockStop": {}},
        *tool("cook", "t1", '{"item": '),
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '"fries"}'}}}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15}}},
    ]
    # The second delta arrives after the block stop: it is ignored, the input stays as it was when the block ended.
    turn = Planner(RawModel(events), SYSTEM_PROMPT).plan([], [])
    assert turn.text == "Cooking now." and turn.stop_reason == "tool_use" and turn.usage.total_tokens == 15
    assert [(c.name, c.input_error is not None) for c in turn.tool_calls] == [("cook", True)]


@pytest.mark.parametrize(
    ("raw", "error"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ('"text"', "must be a JSON object")],
)
def test_garbage_tool_input_is_kept_as_an_error(raw: str, error: str) -> None:
    turn = Planner(RawModel(tool("cook", "t1", raw)), SYSTEM_PROMPT).plan([], [])
    (call,) = turn.tool_calls
    assert call.input == {} and call.input_error is not None and error in call.input_error
    assert turn.message["content"] == [{"toolUse": {"toolUseId": "t1", "name": "cook", "input": {}}}]


def test_empty_turn_is_an_empty_answer() -> None:
    turn = Planner(RawModel([{"messageStop": {"stopReason": "end_turn"}}]), SYSTEM_PROMPT).plan([], [])
    assert (
        turn.tool_calls == () and turn.text == "" and turn.message == {"role": "assistant", "content": [{"text": ""}]}
    )


def test_provider_failure_is_a_planner_error() -> None:
    with pytest.raises(PlannerError, match="ConnectionError: no route"):
        Planner(RawModel(ConnectionError("no route")), SYSTEM_PROMPT).plan([], [])
