"""Checks of tool calls as a reply writes them: reading a call being written, and judging it once per field."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wrapper.call_checks import CallScreen, call_checks, current_call_checks, leading_fields, open_call

HEAD = '\n{"name": "fabricate", "arguments": {'


def test_leading_fields_reads_only_whole_fields() -> None:
    assert leading_fields("") is None
    assert leading_fields('\n{"name": "fabr') is None  # the name is being written
    assert leading_fields(HEAD) == ("fabricate", {})
    assert leading_fields(HEAD + '"capability": "Read the num') == ("fabricate", {})
    assert leading_fields(HEAD + '"capability": "Read \\"it\\"",') == ("fabricate", {"capability": 'Read "it"'})
    assert leading_fields(HEAD + '"capability": "x", "limit": 25') == ("fabricate", {"capability": "x"})  # 250?
    assert leading_fields(HEAD + '"capability": "x", "limit": 25}') == ("fabricate", {"capability": "x", "limit": 25})
    nested = HEAD + '"inputs": {"reason": "the text"}, "examples": [{"input": {"reason": "Thr'
    assert leading_fields(nested) == ("fabricate", {"inputs": {"reason": "the text"}})
    assert leading_fields('\n{"arguments": {"x": 1}, "name": "fabricate"}') is None  # not the model's own order


def test_open_call_is_a_call_left_unfinished_at_the_end() -> None:
    whole = '<tool_call>\n{"name": "pager", "arguments": {"summary": "x"}}\n</tool_call>'
    assert open_call("an answer.") is None
    assert open_call(whole) is None
    assert open_call(whole + "\n<tool_call>" + HEAD + '"capability": "Cre') == (len(whole) + 1, "fabricate")
    assert open_call("Plan:\n<tool_call>\n{") == (6, None)


def test_a_screen_refuses_a_call_as_soon_as_its_fields_suffice_and_asks_once_per_field() -> None:
    seen: list[dict[str, Any]] = []

    def check(fields: Mapping[str, Any]) -> str | None:
        seen.append(dict(fields))
        return "a worker does this" if fields.get("capability") == "read the alarm" else None

    screen = CallScreen({"fabricate": check}, ["fabricate", "pager"])
    first = '<tool_call>\n{"name": "pager", "arguments": {"summary": "read the alarm"}}\n</tool_call>\n'
    partial = first + "<tool_call>" + HEAD + '"capability": "read the al'
    assert screen.refusal(partial) is None and seen == []  # another tool, and a field still being written
    assert screen.refusal(partial + 'arm",') is not None
    assert screen.refusal(partial + 'arm", "inputs": {}}') is not None  # remembered: not judged again
    assert seen == [{"capability": "read the alarm"}]
    refusal = screen.refused
    assert refusal is not None and refusal.start == len(first) and refusal.name == "fabricate"
    assert refusal.problem == "a worker does this"


def test_a_screen_judges_a_whole_call_with_all_its_fields_once() -> None:
    seen: list[dict[str, Any]] = []

    def check(fields: Mapping[str, Any]) -> str | None:
        seen.append(dict(fields))
        return "no examples" if "examples" in fields and not fields["examples"] else None

    screen = CallScreen({"fabricate": check}, ["fabricate"])
    call = {"name": "fabricate", "arguments": {"capability": "c", "examples": []}}
    text = f"<tool_call>\n{json.dumps(call)}\n</tool_call>"
    refusal = screen.refusal(text)
    assert refusal is not None and refusal.start == 0 and refusal.problem == "no examples"
    assert seen[-1] == {"capability": "c", "examples": []}


def test_checks_hold_inside_the_block_only() -> None:
    assert not CallScreen(current_call_checks(), ["fabricate"])
    with call_checks({"fabricate": lambda fields: None}):
        assert set(current_call_checks()) == {"fabricate"}
    assert dict(current_call_checks()) == {}


def test_a_check_that_fails_lets_the_call_stand(caplog: Any) -> None:
    def broken(fields: Mapping[str, Any]) -> str | None:
        raise KeyError("examples")

    screen = CallScreen({"fabricate": broken}, ["fabricate"])
    text = '<tool_call>\n{"name": "fabricate", "arguments": {"capability": "c"}}\n</tool_call>'
    assert screen.refusal(text) is None
    assert "the call check failed" in caplog.text


def test_hostile_replies_are_read_without_error() -> None:
    screen = CallScreen({"fabricate": lambda fields: "no" if fields else None}, ["fabricate"])
    for text in (
        "<tool_call>" * 50,
        "<tool_call>\n" + '{"name": "fabricate", "arguments": {"capability": "\\ud800 \\x", ',
        "<tool_call>\n" + '{"name": "fabricate", "arguments": {"' + "k" * 100_000,
        '</tool_call><tool_call>\n{"name": "fabricate", "arguments": {1: 2}}',
        "<tool_call>\n" + '{"name": "fabricate", "arguments": {"a": [' + "[" * 5000,
    ):
        assert screen.refusal(text) is None
        assert open_call(text) is not None
