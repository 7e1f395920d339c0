"""Reading tool calls out of a small model's text.

Qwen2.5-Coder (and many small models) write a tool call as a JSON object ``{"name": ..., "arguments": {...}}``:
inside ``<tool_call>`` tags as their chat template asks, inside a fenced ```` ```json ```` block, or bare. This module
finds those objects, keeps the ones that are calls, and returns the rest of the text as text. Anything that does not
parse as a call stays text: a malformed call is never guessed at, the model is shown its own words again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["ParsedCall", "ParsedReply", "parse_reply"]

# A fenced block (any or no language tag) or a <tool_call> element; the body is what is parsed.
_SEGMENT = re.compile(
    r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\n(?P<fenced>.*?)```|<tool_call>(?P<tagged>.*?)(?:</tool_call>|\Z)",
    re.DOTALL,
)
_ARGUMENT_KEYS = ("arguments", "parameters", "input", "args")


@dataclass(frozen=True)
class ParsedCall:
    """One tool call found in the text."""

    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ParsedReply:
    """The text with its tool calls taken out, and the calls in the order they were written."""

    text: str
    calls: tuple[ParsedCall, ...]


def parse_reply(text: str, tool_names: Collection[str]) -> ParsedReply:
    """Split a model's reply into text and tool calls.

    Args:
        text: the model's whole reply.
        tool_names: the tools that were offered; an object naming one of them is a call even without arguments, and
            ``{"<tool>": {...}}`` is read as a call of that tool.

    Returns:
        The remaining text (stripped) and the calls.
    """
    calls: list[ParsedCall] = []
    kept: list[str] = []
    position = 0
    for match in _SEGMENT.finditer(text):
        body = match.group("fenced") if match.group("fenced") is not None else match.group("tagged")
        found = _calls_in(body, tool_names)
        kept.append(text[position : match.start()])
        if found is None:
            kept.append(match.group(0))
        else:
            calls.extend(found)
        position = match.end()
    rest = text[position:]
    if not calls and not kept and rest.strip()[:1] in ("{", "["):
        found = _calls_in(rest, tool_names)
        if found is not None:
            return ParsedReply("", tuple(found))
    kept.append(rest)
    return ParsedReply("".join(kept).strip(), tuple(calls))


def _calls_in(body: str, tool_names: Collection[str]) -> list[ParsedCall] | None:
    """The calls in a segment, or ``None`` unless the whole segment is JSON that holds only calls."""
    values = list(_json_values(body))
    if not values:
        return None
    calls: list[ParsedCall] = []
    for value in values:
        try:
            found = _as_calls(value, tool_names)
        except RecursionError:  # lists nested a thousand deep: not calls
            return None
        if found is None:
            return None
        calls.extend(found)
    return calls or None


def _json_values(body: str) -> Iterator[Any]:
    """Every JSON value written one after another in ``body`` (several calls in one block); none if any is not JSON."""
    decoder = json.JSONDecoder(strict=False)  # strict=False: raw newlines inside strings, as models write code
    values: list[Any] = []
    index = 0
    stripped = body.strip()
    while index < len(stripped):
        try:
            value, end = decoder.raw_decode(stripped, index)
        except (json.JSONDecodeError, RecursionError):  # nested past what the decoder takes: text, not a call
            return
        values.append(value)
        index = end
        while index < len(stripped) and stripped[index] in " \t\r\n,":
            index += 1
    yield from values


def _as_calls(value: Any, tool_names: Collection[str]) -> list[ParsedCall] | None:
    if isinstance(value, list):
        calls: list[ParsedCall] = []
        for item in value:
            found = _as_calls(item, tool_names)
            if found is None:
                return None
            calls.extend(found)
        return calls
    if not isinstance(value, dict):
        return None
    for key in ("tool_calls", "calls"):
        if isinstance(value.get(key), list) and len(value) == 1:
            return _as_calls(value[key], tool_names)
    call = _as_call(value, tool_names)
    return None if call is None else [call]


def _as_call(value: dict[str, Any], tool_names: Collection[str]) -> ParsedCall | None:
    if isinstance(value.get("function"), dict):  # the OpenAI shape: {"type": "function", "function": {...}}
        value = value["function"]
    name = value.get("name")
    if isinstance(name, str) and name:
        arguments = next((value[key] for key in _ARGUMENT_KEYS if key in value), None)
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments, strict=False)
            except (json.JSONDecodeError, RecursionError):
                return None
        if arguments is None and name in tool_names and set(value) <= {"name", "type", "id"}:
            arguments = {}
        if isinstance(arguments, dict) and set(value) - {"name", "type", "id", *_ARGUMENT_KEYS} == set():
            return ParsedCall(name, arguments)
        return None
    if len(value) == 1:
        ((only, arguments),) = value.items()
        if only in tool_names and isinstance(arguments, dict):
            return ParsedCall(only, arguments)
    return None
