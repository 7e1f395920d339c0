"""Reading tool calls out of a small model's text; recorded_replies.json holds replies recorded from Qwen2.5-Coder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from wrapper._fenced_tool_calls import ParsedCall, parse_reply

TOOLS = {"recent_deploys", "pager", "fabricate", "alarm_reason_parser"}
RECORDED: list[dict[str, Any]] = json.loads((Path(__file__).parent / "recorded_replies.json").read_text())["replies"]


@pytest.mark.parametrize("case", RECORDED, ids=[case["id"] for case in RECORDED])
def test_recorded_replies(case: dict[str, Any]) -> None:
    parsed = parse_reply(case["text"], TOOLS)
    assert [(c.name, c.input) for c in parsed.calls] == [(c["name"], c["input"]) for c in case["calls"]]
    assert parsed.text == case["rest"]


def test_tagged_call_is_read() -> None:
    call = '{"name": "pager", "arguments": {"service": "a", "severity": "high", "summary": "s"}}'
    text = f"<tool_call>\n{call}\n</tool_call>"
    assert parse_reply(text, TOOLS).calls == (
        ParsedCall("pager", {"service": "a", "severity": "high", "summary": "s"}),
    )


def test_several_calls_in_one_fence_and_in_a_list() -> None:
    one_fence = (
        '```json\n{"name": "pager", "arguments": {}}\n{"name": "recent_deploys", "arguments": {"service": "x"}}\n```'
    )
    as_list = '[{"name": "pager", "arguments": {}}, {"name": "recent_deploys", "arguments": {"service": "x"}}]'
    for text in (one_fence, as_list):
        assert [c.name for c in parse_reply(text, TOOLS).calls] == ["pager", "recent_deploys"]


def test_arguments_as_a_json_string_and_the_openai_shape() -> None:
    text = '{"type": "function", "function": {"name": "recent_deploys", "arguments": "{\\"service\\": \\"x\\"}"}}'
    assert parse_reply(text, TOOLS).calls == (ParsedCall("recent_deploys", {"service": "x"}),)


def test_tool_name_as_the_only_key() -> None:
    assert parse_reply('```json\n{"recent_deploys": {"service": "x"}}\n```', TOOLS).calls == (
        ParsedCall("recent_deploys", {"service": "x"}),
    )


def test_json_that_is_not_a_call_stays_text() -> None:
    text = 'The datapoints are:\n```json\n{"datapoints": [41.0, 57.0], "threshold": 25.0}\n```'
    parsed = parse_reply(text, TOOLS)
    assert parsed.calls == ()
    assert parsed.text == text


def test_malformed_call_stays_text_and_good_calls_next_to_it_are_kept() -> None:
    broken = '```json\n{"name": "pager", "arguments": {"service": "a",}\n```'
    good = '```json\n{"name": "recent_deploys", "arguments": {"service": "a"}}\n```'
    parsed = parse_reply(f"{broken}\n{good}", TOOLS)
    assert parsed.calls == (ParsedCall("recent_deploys", {"service": "a"}),)
    assert parsed.text == broken


def test_unterminated_tool_call_tag_is_read_to_the_end() -> None:
    text = '<tool_call>\n{"name": "pager", "arguments": {"service": "a"}}'
    assert parse_reply(text, TOOLS).calls == (ParsedCall("pager", {"service": "a"}),)


def test_code_with_raw_newlines_inside_a_string_is_accepted() -> None:
    text = '{"name": "fabricate", "arguments": {"capability": "line one\nline two"}}'
    assert parse_reply(text, TOOLS).calls == (ParsedCall("fabricate", {"capability": "line one\nline two"}),)


def test_plain_answer_has_no_calls() -> None:
    parsed = parse_reply("  checkout-api is failing since deploy 2026.11.29-1.  ", TOOLS)
    assert parsed == parse_reply("checkout-api is failing since deploy 2026.11.29-1.", TOOLS)
    assert parsed.calls == ()
    assert parsed.text == "checkout-api is failing since deploy 2026.11.29-1."


def test_unknown_name_with_arguments_is_still_a_call() -> None:
    # The planner turns it into an UnknownTool error the model can read, rather than silently answering.
    assert parse_reply('{"name": "rollback", "arguments": {"service": "x"}}', TOOLS).calls == (
        ParsedCall("rollback", {"service": "x"}),
    )


def test_extra_keys_make_it_data_not_a_call() -> None:
    text = '{"name": "checkout-api", "arguments": {}, "owner": "payments"}'
    assert parse_reply(text, TOOLS).calls == ()


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "f", "arguments": {"a": ' + "[" * 5000 + "]" * 5000 + "}}\n</tool_call>",
        "```json\n" + "[" * 5000 + "]" * 5000 + "\n```",
        '{"name": "f", "arguments": "' + "[" * 5000 + "]" * 5000 + '"}',
        "<tool_call>\n" + "[" * 3000 + '{"name": "f", "arguments": {}}' + "]" * 3000 + "\n</tool_call>",
    ],
)
def test_values_nested_past_the_decoders_depth_are_text_not_an_error(text: str) -> None:
    reply = parse_reply(text, {"f"})
    assert reply.calls == () and reply.text
