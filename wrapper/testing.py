"""A deterministic Strands model for tests and offline runs: :class:`ScriptedModel` plays a fixed script of turns.

Each call to the model plays the next turn: some text, some tool calls (with their inputs), or both, with optional
token usage. A call after the last turn raises :class:`ScriptExhaustedError`, so a test cannot pass by accident
when the agent loops more than it should. The same script format is used by ``scripted:<file.json>`` model specs::

    {"turns": [
      {"tool_calls": [{"name": "burger_cook", "input": {"item": "cheeseburger"}, "id": "tooluse_1"}],
       "usage": {"input_tokens": 120, "output_tokens": 30}},
      {"text": "Your order is ready."}
    ]}

A tool call without an ``id`` gets ``tooluse_<turn>_<n>`` (both counted from 0). A turn may instead carry
``structured``: the object an agent asked for with ``structured_output_model=M`` (it is played as a call to the tool
Strands registers for ``M``).

Example:
    >>> from strands import Agent
    >>> model = ScriptedModel([{"text": "hello"}])
    >>> str(Agent(model=model, callback_handler=None)("hi")).strip()
    'hello'
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolChoice, ToolSpec

from wrapper.exceptions import ModelConfigurationError, WrapperError

__all__ = ["ScriptExhaustedError", "ScriptedModel", "ScriptedRequest", "TokenUsage", "ToolCall", "Turn"]

T = TypeVar("T", bound=BaseModel)

# Strands puts this word in the description of the tool it registers for `structured_output_model`; it is how a
# `structured` turn finds that tool when the agent has not forced it (yet).
_STRUCTURED_OUTPUT_MARKER = "StructuredOutputTool"
_MAX_SHOWN_CHARS = 1000


class ScriptExhaustedError(WrapperError):
    """A :class:`ScriptedModel` was called after its last turn was played."""


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    # Checked up front so that a bad value fails when the script loads, not in the middle of an agent run.
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"must be JSON-serialisable ({exc})") from None
    return value


class ToolCall(BaseModel):
    """One tool call in a scripted turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None

    _check_input = field_validator("input")(_json_object)


class TokenUsage(BaseModel):
    """Token usage reported for a scripted turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)


class Turn(BaseModel):
    """What the model says on one call: text and/or tool calls, or a structured output object."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    structured: dict[str, Any] | None = None
    usage: TokenUsage | None = None

    @field_validator("structured")
    @classmethod
    def _check_structured(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _json_object(value)

    @model_validator(mode="after")
    def _check_not_empty(self) -> Turn:
        if self.text is None and not self.tool_calls and self.structured is None:
            raise ValueError("a turn needs text, tool_calls or structured")
        return self


class _Script(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class ScriptedRequest:
    """What a :class:`ScriptedModel` was given on one call (for assertions in tests)."""

    messages: Messages
    tool_specs: list[ToolSpec]
    system_prompt: str | None
    tool_choice: ToolChoice | None = None
    output_model: type[BaseModel] | None = None

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered to the model on this call."""
        return [spec["name"] for spec in self.tool_specs]


class ScriptedModel(Model):
    """A Strands model that plays a fixed list of turns, one per call, and fails loudly on an extra call.

    Safe to share between agents running in parallel threads: each call takes the next turn exactly once.

    Attributes:
        config: The model configuration (``model_id`` is ``"scripted"`` unless overridden).
        requests: What the model was given on each call, in call order (including a call that found the script
            exhausted).
    """

    def __init__(self, turns: Sequence[Turn | Mapping[str, Any]], *, keep_messages: bool = True, **config: Any) -> None:
        """Create a model that plays ``turns`` in order.

        Args:
            turns: The script: :class:`Turn` objects or mappings of the same shape.
            keep_messages: Keep a deep copy of the conversation of every call in :attr:`requests` (the default, for
                assertions). ``False`` records the calls with empty ``messages``: copying a long conversation on
                every turn would otherwise dominate what a benchmark measures.
            **config: Configuration returned by :meth:`get_config` (e.g. ``temperature``; it has no effect).

        Raises:
            ModelConfigurationError: a turn is invalid; the message names the field, e.g.
                ``turns[1].tool_calls[0].name``.
        """
        if isinstance(turns, str | bytes):
            raise ModelConfigurationError("ScriptedModel takes a list of turns; use ScriptedModel.from_json for text")
        self._turns = _validate({"turns": list(turns)}, source=None)
        self.config: dict[str, Any] = {"model_id": "scripted", **config}
        self.requests: list[ScriptedRequest] = []
        self._keep_messages = keep_messages
        self._played = 0
        self._lock = threading.Lock()

    @classmethod
    def from_json(cls, text: str | bytes, **config: Any) -> ScriptedModel:
        """Create a model from a JSON script (``{"turns": [...]}``).

        Raises:
            ModelConfigurationError: the text is not JSON or the script is invalid.
        """
        return cls(_load(text, source=None), **config)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **config: Any) -> ScriptedModel:
        """Create a model from a JSON script file (``{"turns": [...]}``).

        Raises:
            ModelConfigurationError: the file cannot be read, is not JSON, or the script is invalid.
        """
        file = Path(path).expanduser()
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelConfigurationError(f"cannot read model script {file}: {exc.strerror or exc}") from None
        return cls(_load(text, source=str(file)), **config)

    @property
    def turns(self) -> tuple[Turn, ...]:
        """The whole script."""
        return self._turns

    @property
    def calls(self) -> int:
        """How many turns have been played."""
        with self._lock:
            return self._played

    @property
    def remaining(self) -> int:
        """How many turns are left to play."""
        with self._lock:
            return len(self._turns) - self._played

    def update_config(self, **model_config: Any) -> None:
        """Update the configuration returned by :meth:`get_config`."""
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        """Return the model configuration."""
        return self.config

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        *,
        tool_choice: ToolChoice | None = None,
        structured_output_model: type[BaseModel] | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Play the next turn as Strands stream events.

        Raises:
            ScriptExhaustedError: every turn has been played already.
            ModelConfigurationError: the turn is ``structured`` but the call offers no structured output tool.
        """
        specs = list(tool_specs or [])
        request = ScriptedRequest(self._recorded(messages), specs, system_prompt, tool_choice)
        index, turn = self._take(request, messages)
        calls = [(call.name, call.input, call.id or f"tooluse_{index}_{n}") for n, call in enumerate(turn.tool_calls)]
        if turn.structured is not None:
            name = _structured_tool_name(index, tool_choice, specs, structured_output_model)
            calls.append((name, turn.structured, f"tooluse_{index}_{len(calls)}"))
        for event in _turn_events(turn.text, calls, turn.usage):
            yield event

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """Play the next turn as structured output: its ``structured`` object, else its first tool call's input.

        Yields:
            The turn's stream events (so usage can be counted), then ``{"output": <output_model instance>}``.

        Raises:
            ScriptExhaustedError: every turn has been played already.
            ModelConfigurationError: the turn has neither ``structured`` nor tool calls.
            pydantic.ValidationError: the scripted object does not validate against ``output_model``.
        """
        request = ScriptedRequest(self._recorded(prompt), [], system_prompt, output_model=output_model)
        index, turn = self._take(request, prompt)
        if turn.structured is not None:
            data = turn.structured
        elif turn.tool_calls:
            data = turn.tool_calls[0].input
        else:
            raise ModelConfigurationError(
                f"turns[{index}] has neither structured nor tool_calls, but {output_model.__name__} was requested"
            )
        for event in _turn_events(None, [(output_model.__name__, data, f"tooluse_{index}_0")], turn.usage):
            yield cast(dict[str, Any], event)
        yield {"output": output_model.model_validate(data)}

    def _recorded(self, messages: Messages) -> Messages:
        return copy.deepcopy(messages) if self._keep_messages else []

    def _take(self, request: ScriptedRequest, messages: Messages) -> tuple[int, Turn]:
        with self._lock:
            self.requests.append(request)
            if self._played >= len(self._turns):
                raise ScriptExhaustedError(
                    f"ScriptedModel: unexpected call {len(self.requests)}: the script has {len(self._turns)} turn(s) "
                    f"and all were played. Last message given: {_last_message(messages)}"
                )
            index = self._played
            self._played += 1
            return index, self._turns[index]

    def __repr__(self) -> str:
        return f"ScriptedModel(turns={len(self._turns)}, calls={self.calls})"


def _turn_events(
    text: str | None, calls: Sequence[tuple[str, dict[str, Any], str]], usage: TokenUsage | None
) -> Iterator[StreamEvent]:
    yield {"messageStart": {"role": "assistant"}}
    if text is not None:
        yield {"contentBlockStart": {"start": {}}}
        yield {"contentBlockDelta": {"delta": {"text": text}}}
        yield {"contentBlockStop": {}}
    for name, tool_input, tool_use_id in calls:
        yield {"contentBlockStart": {"start": {"toolUse": {"name": name, "toolUseId": tool_use_id}}}}
        yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(tool_input)}}}}
        yield {"contentBlockStop": {}}
    yield {"messageStop": {"stopReason": "tool_use" if calls else "end_turn"}}
    input_tokens, output_tokens = (usage.input_tokens, usage.output_tokens) if usage else (0, 0)
    yield {
        "metadata": {
            "usage": {
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "totalTokens": input_tokens + output_tokens,
            },
            "metrics": {"latencyMs": 0},
        }
    }


def _structured_tool_name(
    index: int, tool_choice: ToolChoice | None, tool_specs: list[ToolSpec], output_model: type[BaseModel] | None
) -> str:
    if tool_choice is not None and "tool" in tool_choice:
        return cast(dict[str, Any], tool_choice)["tool"]["name"]  # type: ignore[no-any-return]
    if output_model is not None:
        return output_model.__name__
    marked = [spec["name"] for spec in tool_specs if _STRUCTURED_OUTPUT_MARKER in spec.get("description", "")]
    if len(marked) == 1:
        return marked[0]
    raise ModelConfigurationError(
        f"turns[{index}] has structured output, but the call offers no structured output tool; "
        "script a tool call to the tool by name instead"
    )


def _last_message(messages: Messages) -> str:
    if not messages:
        return "(none)"
    shown = json.dumps(messages[-1], default=repr, ensure_ascii=False)
    return shown if len(shown) <= _MAX_SHOWN_CHARS else shown[:_MAX_SHOWN_CHARS] + "…"


def _load(text: str | bytes, source: str | None) -> tuple[Turn, ...]:
    where = f" {source}" if source else ""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigurationError(f"model script{where} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelConfigurationError(f'model script{where} must be a JSON object {{"turns": [...]}}')
    return _validate(data, source)


def _validate(data: dict[str, Any], source: str | None) -> tuple[Turn, ...]:
    try:
        return _Script.model_validate(data).turns
    except ValidationError as exc:
        problems = "; ".join(_describe(error["loc"], error["msg"]) for error in exc.errors())
        where = f" {source}" if source else ""
        raise ModelConfigurationError(f"invalid model script{where}: {problems}") from None


def _describe(loc: tuple[int | str, ...], message: str) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    message = message.removeprefix("Value error, ")
    return f"{path}: {message}" if path else message
