"""The planner: one model turn over the orchestration's conversation; its tool calls are one wave of tasks.

The model is any Strands model provider, called directly with Converse-format messages and tool specs (not through
the Strands agent loop: the Arbiter owns the loop, one turn per wave, with the conversation on the blackboard).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arbiter.exceptions import PlannerError
from blackboard import Usage
from wrapper.loops import run_coroutine
from wrapper.model_errors import transient_model_error

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["Planner", "PlannerTurn", "ToolCall"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call of a model turn.

    Attributes:
        tool_use_id: the model's id for the call.
        name: the tool (agent) name.
        input: the parsed input; empty when it was not a JSON object.
        input_error: why the raw input could not be used, if it could not.
    """

    tool_use_id: str
    name: str
    input: dict[str, Any]
    input_error: str | None = None


@dataclass(frozen=True, slots=True)
class PlannerTurn:
    """What one model turn produced: the assistant message (as it goes into the conversation) and its parts."""

    message: dict[str, Any]
    tool_calls: tuple[ToolCall, ...] = ()
    text: str = ""
    stop_reason: str = "end_turn"
    usage: Usage = field(default_factory=Usage)


class Planner:
    """Calls a Strands model once per wave.

    Args:
        model: any Strands model provider.
        system_prompt: the Arbiter's instructions.
    """

    def __init__(self, model: Model, system_prompt: str) -> None:
        self.model = model
        self.system_prompt = system_prompt

    def plan(self, conversation: Sequence[dict[str, Any]], tool_specs: Sequence[dict[str, Any]]) -> PlannerTurn:
        """Run one model turn.

        Raises:
            PlannerError: the provider raised or returned no message; ``retryable`` when the failure is transient
                (throttling, a timeout, a 5xx answer, a broken connection).
        """
        try:
            return run_coroutine(lambda: self._turn(list(conversation), list(tool_specs)))
        except PlannerError:
            raise
        except Exception as exc:
            raise PlannerError(
                f"the model call failed: {type(exc).__name__}: {exc}", retryable=transient_model_error(exc)
            ) from exc

    async def _turn(self, messages: list[dict[str, Any]], tool_specs: list[dict[str, Any]]) -> PlannerTurn:
        blocks: list[dict[str, Any]] = []
        current: dict[str, Any] | None = None
        stop_reason = "end_turn"
        usage = Usage()
        stream = self.model.stream(messages, tool_specs or None, self.system_prompt)  # type: ignore[arg-type]
        async for event in stream:
            if "contentBlockStart" in event:
                start = event["contentBlockStart"].get("start", {})
                tool = start.get("toolUse")
                current = {"toolUse": dict(tool), "raw": ""} if tool else {"text": ""}
            elif "contentBlockDelta" in event:
                delta = event["contentBlockDelta"].get("delta", {})
                if current is None:  # some providers send text without a block start
                    current = {"text": ""}
                if "text" in delta and "text" in current:
                    current["text"] += delta["text"]
                elif "toolUse" in delta and "toolUse" in current:
                    current["raw"] += delta["toolUse"].get("input", "")
            elif "contentBlockStop" in event:
                if current is not None:
                    blocks.append(current)
                current = None
            elif "messageStop" in event:
                stop_reason = event["messageStop"].get("stopReason", stop_reason)
            elif "metadata" in event:
                raw = event["metadata"].get("usage", {})
                usage = Usage(
                    input_tokens=raw.get("inputTokens", 0),
                    output_tokens=raw.get("outputTokens", 0),
                    total_tokens=raw.get("totalTokens", 0),
                )
        if current is not None:
            blocks.append(current)
        return _assemble(blocks, stop_reason, usage)


def _assemble(blocks: list[dict[str, Any]], stop_reason: str, usage: Usage) -> PlannerTurn:
    content: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    texts: list[str] = []
    for block in blocks:
        if "text" in block:
            if block["text"]:
                texts.append(block["text"])
                content.append({"text": block["text"]})
            continue
        tool = block["toolUse"]
        parsed, error = _parse_input(block["raw"])
        call = ToolCall(str(tool.get("toolUseId", "")), str(tool.get("name", "")), parsed, error)
        calls.append(call)
        content.append({"toolUse": {"toolUseId": call.tool_use_id, "name": call.name, "input": parsed}})
    if not content:
        content.append({"text": ""})
    return PlannerTurn({"role": "assistant", "content": content}, tuple(calls), "\n".join(texts), stop_reason, usage)


def _parse_input(raw: str) -> tuple[dict[str, Any], str | None]:
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return {}, f"the tool input is not valid JSON ({exc.msg} at position {exc.pos})"
    if not isinstance(value, dict):
        return {}, f"the tool input must be a JSON object, not {type(value).__name__}"
    return value, None
