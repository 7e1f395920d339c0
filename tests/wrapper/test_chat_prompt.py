"""The prompt of a conversation: a worker made during it is described where it was made, not in the listing."""

from __future__ import annotations

import json
from typing import Any

from wrapper._chat_prompt import render_prompt


def spec(name: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"reason": {"type": "string"}}}
    return {"name": name, "description": f"{name} does its job.", "inputSchema": {"json": schema}}


EVENT = {"role": "user", "content": [{"text": "An alarm: 3 datapoints [41.0, 57.0, 66.0] > (25.0)."}]}
ASKED = {
    "role": "assistant",
    "content": [{"toolUse": {"toolUseId": "t1", "name": "fabricate", "input": {"capability": "read the numbers"}}}],
}


def made(text: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": "t1", "status": "success", "content": [{"text": text}]}}],
    }


def listing(prompt: str) -> list[str]:
    block = prompt.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    return [json.loads(line)["function"]["name"] for line in block.splitlines()]


def test_a_worker_made_in_the_conversation_keeps_the_prompt_of_the_turn_before_as_its_prefix() -> None:
    before = render_prompt(None, [EVENT], [spec("pager"), spec("fabricate")], "sys")
    conversation = [EVENT, ASKED, made(json.dumps({"agent": "reason_reader", "state": "active"}))]
    after = render_prompt(None, conversation, [spec("pager"), spec("reason_reader"), spec("fabricate")], "sys")

    assert listing(after) == ["pager", "fabricate"]
    assert after.startswith(before.removesuffix("<|im_start|>assistant\n"))  # nothing before the new turn changed
    described = after.split("<tool_response>", 1)[1]
    assert "The tool `reason_reader` can be called from now on:" in described
    assert '"name": "reason_reader"' in described and "reason_reader does its job." in described
    assert described.count("reason_reader does its job.") == 1


def test_a_tool_named_in_free_text_or_not_at_all_stays_in_the_listing() -> None:
    said = made(json.dumps({"change": "pager fix", "note": "use reason_reader later"}))
    prompt = render_prompt(None, [EVENT, ASKED, said], [spec("pager"), spec("reason_reader")], "sys")
    assert listing(prompt) == ["pager", "reason_reader"]
    assert "can be called from now on" not in prompt


def test_a_tool_called_before_a_result_names_it_stays_in_the_listing() -> None:
    called = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t0", "name": "reason_reader", "input": {}}}]}
    answered = {"role": "user", "content": [{"toolResult": {"toolUseId": "t0", "status": "error", "content": []}}]}
    reused = made(json.dumps({"agent": "reason_reader", "reused": True}))
    before = render_prompt(None, [EVENT], [spec("pager"), spec("reason_reader")], "sys")
    after = render_prompt(None, [EVENT, called, answered, ASKED, reused], [spec("pager"), spec("reason_reader")], "sys")
    assert listing(after) == ["pager", "reason_reader"]  # it was listed when it was called: the listing stays
    assert after.startswith(before.removesuffix("<|im_start|>assistant\n"))
    assert "can be called from now on" not in after


def test_when_every_tool_was_made_in_the_conversation_the_listing_stays() -> None:
    conversation = [EVENT, ASKED, made(json.dumps({"agent": "reason_reader"}))]
    prompt = render_prompt(None, conversation, [spec("reason_reader")], "sys")
    assert listing(prompt) == ["reason_reader"]  # the listing is what shows the call format
    assert "can be called from now on" not in prompt


def test_a_tool_result_that_is_not_json_names_nothing() -> None:
    prompt = render_prompt(None, [EVENT, ASKED, made("reason_reader")], [spec("pager"), spec("reason_reader")], "sys")
    assert listing(prompt) == ["pager", "reason_reader"]
