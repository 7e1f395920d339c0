"""Rendering a Strands conversation into one prompt string with the model's own chat template.

Strands messages (Converse format: text, toolUse and toolResult blocks) become the OpenAI-style messages chat
templates expect: tool calls as ``tool_calls`` of the assistant, tool results as ``tool`` messages (named, since
templates such as Qwen's do not show call ids). Without a template in the GGUF file, ChatML with Qwen's tool
instructions is used.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, cast

from strands.types.content import Messages
from strands.types.tools import ToolSpec

from wrapper.grounding import string_values

__all__ = ["chat_messages", "render_prompt"]


def render_prompt(template: str | None, messages: Messages, specs: Sequence[ToolSpec], system: str | None) -> str:
    """The prompt for the next assistant turn.

    A tool that a tool result of the conversation names before any call of it (a worker made during the
    conversation) is described right after that result instead of in the listing at the top: a listing that
    changed would change the prompt from its first lines, and every later token would be evaluated again, turn
    after turn.
    """
    tools = {spec["name"]: _function(spec) for spec in specs}
    introduced = _introduced_tools(messages, tools)
    if len(introduced) == len(tools):
        introduced = {}  # a listing is what shows the model how to call at all
    chat = chat_messages(messages, system, introduced)
    listed = [tool for name, tool in tools.items() if name not in introduced]
    if template is None:
        return _chatml(chat, listed)
    formatter = _formatter(template)
    return str(formatter(messages=chat, tools=listed or None).prompt)


def _function(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec["name"],
            "description": spec.get("description", ""),
            "parameters": dict(spec.get("inputSchema", {}).get("json") or {"type": "object"}),
        },
    }


def _introduced_tools(messages: Messages, tools: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The tools a tool result names as a JSON string value (``{"agent": "reason_reader"}``) before any call of them.

    A tool called before it was named was listed then (a worker an earlier one reused): it stays in the listing.
    """
    called: set[str] = set()
    introduced: set[str] = set()
    for message in messages:
        for block in message.get("content", []):
            if "toolUse" in block:
                called.add(block["toolUse"]["name"])
            introduced |= _named(block.get("toolResult", {}).get("content", [])) - called
    return {name: tool for name, tool in tools.items() if name in introduced}


def _named(items: list[Any]) -> set[str]:
    """The string values of a tool result's JSON content."""
    return {text for item in items for text in string_values(_json_of(item))}


def _json_of(item: Any) -> Any:
    if "json" in item:
        return item["json"]
    try:
        return json.loads(str(item.get("text", "")))
    except ValueError:
        return None


def chat_messages(
    messages: Messages, system: str | None, introduced: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Strands messages as chat-template messages (system first).

    ``introduced`` tools (see :func:`render_prompt`) are described after the first tool result that names them.
    """
    chat: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    names: dict[str, str] = {}
    pending = dict(introduced or {})
    for message in messages:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        for block in message.get("content", []):
            if "text" in block:
                texts.append(block["text"])
            elif "json" in block:
                texts.append(json.dumps(cast(dict[str, Any], block)["json"]))
            elif "toolUse" in block:
                use = block["toolUse"]
                names[use["toolUseId"]] = use["name"]
                calls.append({"type": "function", "function": {"name": use["name"], "arguments": use.get("input")}})
            elif "toolResult" in block:
                result = block["toolResult"]
                name = names.get(result["toolUseId"], "tool")
                status = result.get("status", "success")
                items = result.get("content", [])
                body = " ".join(_result_text(item) for item in items)
                named = _named(items) if pending else set()
                for tool in [t for t in pending if t in named]:
                    body += f"\nThe tool `{tool}` can be called from now on: {json.dumps(pending.pop(tool))}"
                results.append({"role": "tool", "content": f"{name} ({status}): {body}"})
        if message["role"] == "assistant":
            entry: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts)}
            if calls:
                entry["tool_calls"] = calls
            chat.append(entry)
            continue
        chat.extend(results)
        if texts:
            chat.append({"role": "user", "content": "\n".join(texts)})
    return chat


def _result_text(item: Any) -> str:
    if "text" in item:
        return str(item["text"])
    if "json" in item:
        return json.dumps(item["json"])
    return ""


@functools.lru_cache(maxsize=4)
def _formatter(template: str) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=template, eos_token="<|im_end|>", bos_token="", add_generation_prompt=True)


def _chatml(chat: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    rest = chat
    system = chat[0]["content"] if chat and chat[0]["role"] == "system" else "You are a helpful assistant."
    if chat and chat[0]["role"] == "system":
        rest = chat[1:]
    if tools:
        listed = "\n".join(json.dumps(tool) for tool in tools)
        system += (
            "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listed}\n</tools>"
            "\n\nFor each function call, return a json object with function name and arguments within "
            '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
            "<args-json-object>}\n</tool_call>"
        )
    parts.append(f"<|im_start|>system\n{system}<|im_end|>\n")
    for message in rest:
        if message["role"] == "tool":
            parts.append(f"<|im_start|>user\n<tool_response>\n{message['content']}\n</tool_response><|im_end|>\n")
            continue
        body = message.get("content") or ""
        for call in message.get("tool_calls", []):
            function = call["function"]
            body += (
                f'\n<tool_call>\n{{"name": "{function["name"]}", "arguments": {json.dumps(function["arguments"])}}}'
                "\n</tool_call>"
            )
        parts.append(f"<|im_start|>{message['role']}\n{body.strip()}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)
