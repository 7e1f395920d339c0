"""ScriptedModel: drives a real strands.Agent with real tools, deterministically, and fails loudly off-script."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError
from strands import Agent, tool

from wrapper.exceptions import ModelConfigurationError
from wrapper.testing import ScriptedModel, ScriptExhaustedError, ToolCall, Turn

COOKED: list[str] = []


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection beyond loopback (Strands telemetry or AWS lookups must not reach out)."""
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
                raise AssertionError(f"test tried to connect to {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _clear_cooked() -> None:
    COOKED.clear()


@tool
def burger_cook(item: str, well_done: bool = False) -> str:
    """Cook a burger.

    Args:
        item: What to cook.
        well_done: Whether to cook it through.
    """
    COOKED.append(f"{item}{' (well done)' if well_done else ''}")
    return f"cooked {item}"


@tool
def fries(size: str) -> str:
    """Fry some fries.

    Args:
        size: small, medium or large.
    """
    COOKED.append(f"{size} fries")
    return f"{size} fries ready"


class Order(BaseModel):
    item: str
    quantity: int


def agent(model: ScriptedModel, *tools: Any) -> Agent:
    return Agent(model=model, tools=list(tools), callback_handler=None, system_prompt="You run a burger bar.")


def two_turns() -> list[dict[str, Any]]:
    return [
        {
            "tool_calls": [{"name": "burger_cook", "input": {"item": "cheeseburger"}}],
            "usage": {"input_tokens": 120, "output_tokens": 30},
        },
        {"text": "Your order is ready.", "usage": {"input_tokens": 200, "output_tokens": 12}},
    ]


async def collect(events: AsyncIterable[Any]) -> list[Any]:
    return [event async for event in events]


def test_agent_runs_the_scripted_tool_call_then_answers() -> None:
    model = ScriptedModel(two_turns())

    result = agent(model, burger_cook)("One cheeseburger, please.")

    assert COOKED == ["cheeseburger"]
    assert str(result).strip() == "Your order is ready."
    assert result.stop_reason == "end_turn"
    assert (model.calls, model.remaining) == (2, 0)
    first, second = model.requests
    assert first.tool_names == ["burger_cook"]
    assert first.system_prompt == "You run a burger bar."
    assert first.messages[-1]["content"] == [{"text": "One cheeseburger, please."}]
    tool_result = second.messages[-1]["content"][0]["toolResult"]
    assert tool_result["toolUseId"] == "tooluse_0_0"
    assert tool_result["status"] == "success"
    assert tool_result["content"] == [{"text": "cooked cheeseburger"}]


def test_without_kept_messages_the_calls_are_recorded_but_not_the_conversation() -> None:
    model = ScriptedModel(two_turns(), keep_messages=False)
    bar = agent(model, burger_cook)
    bar("One cheeseburger, please.")

    assert [request.tool_names for request in model.requests] == [["burger_cook"], ["burger_cook"]]
    assert [request.messages for request in model.requests] == [[], []]
    with pytest.raises(ScriptExhaustedError, match=r"And a milkshake\."):
        bar("And a milkshake.")


def test_usage_figures_reach_the_agent_result_metrics() -> None:
    result = agent(ScriptedModel(two_turns()), burger_cook)("One cheeseburger, please.")

    usage = result.metrics.accumulated_usage
    assert (usage["inputTokens"], usage["outputTokens"], usage["totalTokens"]) == (320, 42, 362)


def test_a_call_after_the_last_turn_fails_loudly() -> None:
    model = ScriptedModel(two_turns())
    bar = agent(model, burger_cook)
    bar("One cheeseburger, please.")

    with pytest.raises(ScriptExhaustedError) as caught:
        bar("And a milkshake.")

    message = str(caught.value)
    assert "2 turn(s)" in message
    assert "And a milkshake." in message
    assert model.calls == 2
    assert len(model.requests) == 3


def test_several_tool_calls_in_one_turn_all_run() -> None:
    model = ScriptedModel(
        [
            {
                "tool_calls": [
                    {"name": "burger_cook", "input": {"item": "cheeseburger"}},
                    {"name": "burger_cook", "input": {"item": "veggie", "well_done": True}, "id": "mine"},
                    {"name": "fries", "input": {"size": "large"}},
                ]
            },
            {"text": "All done."},
        ]
    )

    result = agent(model, burger_cook, fries)("The usual.")

    assert sorted(COOKED) == ["cheeseburger", "large fries", "veggie (well done)"]
    assert str(result).strip() == "All done."
    results = [block["toolResult"] for block in model.requests[1].messages[-1]["content"]]
    assert sorted(r["toolUseId"] for r in results) == ["mine", "tooluse_0_0", "tooluse_0_2"]
    assert all(r["status"] == "success" for r in results)


def test_stream_yields_the_strands_event_sequence() -> None:
    model = ScriptedModel(
        [
            {
                "text": "Cooking.",
                "tool_calls": [{"name": "fries", "input": {"size": "small"}}],
                "usage": {"input_tokens": 3},
            }
        ]
    )

    events = asyncio.run(collect(model.stream([{"role": "user", "content": [{"text": "hi"}]}])))

    assert events == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockStart": {"start": {}}},
        {"contentBlockDelta": {"delta": {"text": "Cooking."}}},
        {"contentBlockStop": {}},
        {"contentBlockStart": {"start": {"toolUse": {"name": "fries", "toolUseId": "tooluse_0_0"}}}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"size": "small"}'}}}},
        {"contentBlockStop": {}},
        {"messageStop": {"stopReason": "tool_use"}},
        {"metadata": {"usage": {"inputTokens": 3, "outputTokens": 0, "totalTokens": 3}, "metrics": {"latencyMs": 0}}},
    ]


def test_a_text_turn_ends_the_turn() -> None:
    events = asyncio.run(collect(ScriptedModel([Turn(text="hello")]).stream([])))

    assert {"messageStop": {"stopReason": "end_turn"}} in events


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        ([{"text": "ok"}, {"tool_calls": [{"input": {}}]}], "turns[1].tool_calls[0].name: Field required"),
        ([{"tool_calls": [{"name": ""}]}], "turns[0].tool_calls[0].name"),
        ([{}], "turns[0]: a turn needs text, tool_calls or structured"),
        ([{"txt": "typo"}], "turns[0].txt: Extra inputs are not permitted"),
        ([{"tool_calls": [{"name": "fries", "input": ["large"]}]}], "turns[0].tool_calls[0].input"),
        ([{"text": "x", "usage": {"input_tokens": -1}}], "turns[0].usage.input_tokens"),
        ([{"structured": {"when": object()}}], "turns[0].structured: must be JSON-serialisable"),
    ],
)
def test_invalid_scripts_name_the_field(turns: list[dict[str, Any]], expected: str) -> None:
    with pytest.raises(ModelConfigurationError, match="invalid model script") as caught:
        ScriptedModel(turns)

    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ('[{"text": "hi"}]', 'must be a JSON object {"turns": [...]}'),
        ('{"steps": []}', "turns: Field required"),
        ('{"turns": [{"text": 1}]}', "turns[0].text: Input should be a valid string"),
    ],
)
def test_invalid_json_scripts_are_configuration_errors(text: str, expected: str) -> None:
    with pytest.raises(ModelConfigurationError) as caught:
        ScriptedModel.from_json(text)

    assert expected in str(caught.value)


def test_a_string_is_not_a_list_of_turns() -> None:
    with pytest.raises(ModelConfigurationError, match="from_json"):
        ScriptedModel('{"turns": []}')  # type: ignore[arg-type]


def test_from_json_and_from_file_load_the_same_script(tmp_path: Path) -> None:
    text = json.dumps({"turns": two_turns()})
    path = tmp_path / "script.json"
    path.write_text(text, encoding="utf-8")

    from_json = ScriptedModel.from_json(text, temperature=0)
    from_file = ScriptedModel.from_file(path)

    assert from_json.turns == from_file.turns
    assert from_json.turns[0].tool_calls == (ToolCall(name="burger_cook", input={"item": "cheeseburger"}),)
    assert from_json.get_config() == {"model_id": "scripted", "temperature": 0}
    assert str(agent(from_file, burger_cook)("go")).strip() == "Your order is ready."


def test_from_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(ModelConfigurationError, match=r"cannot read model script .*missing\.json"):
        ScriptedModel.from_file(missing)

    bad = tmp_path / "bad.json"
    bad.write_text('{"turns": [{}]}', encoding="utf-8")
    with pytest.raises(ModelConfigurationError, match=r"bad\.json: turns\[0\]"):
        ScriptedModel.from_file(bad)


def test_update_config_changes_get_config() -> None:
    model = ScriptedModel([])

    model.update_config(temperature=0.5)

    assert model.get_config() == {"model_id": "scripted", "temperature": 0.5}
    assert model.config is model.get_config()


def test_structured_output_through_the_agent_in_one_turn() -> None:
    model = ScriptedModel([{"structured": {"item": "fries", "quantity": 2}}])

    result = agent(model)("Two fries.", structured_output_model=Order)

    assert result.structured_output == Order(item="fries", quantity=2)
    assert model.calls == 1
    assert model.requests[0].tool_names == ["Order"]


def test_structured_output_by_calling_the_tool_named_after_the_model() -> None:
    model = ScriptedModel([{"tool_calls": [{"name": "Order", "input": {"item": "shake", "quantity": 1}}]}])

    result = agent(model)("A shake.", structured_output_model=Order)

    assert result.structured_output == Order(item="shake", quantity=1)
    assert model.calls == 1


def test_structured_output_after_the_agent_forces_its_tool() -> None:
    model = ScriptedModel([{"text": "Let me think."}, {"structured": {"item": "burger", "quantity": 3}}])

    result = agent(model)("Three burgers.", structured_output_model=Order)

    assert result.structured_output == Order(item="burger", quantity=3)
    assert model.requests[1].tool_choice == {"tool": {"name": "Order"}}


def test_a_structured_turn_without_a_structured_output_tool_is_an_error() -> None:
    model = ScriptedModel([{"structured": {"item": "fries", "quantity": 1}}])

    with pytest.raises(ModelConfigurationError, match=r"turns\[0\] has structured output"):
        agent(model, fries)("Fries.")


def test_model_structured_output_yields_the_validated_instance() -> None:
    model = ScriptedModel(
        [
            {"structured": {"item": "fries", "quantity": 2}},
            {"tool_calls": [{"name": "Order", "input": {"item": "cola", "quantity": 1}}]},
            {"structured": {"item": "fries"}},
        ]
    )
    prompt: list[Any] = [{"role": "user", "content": [{"text": "order"}]}]

    first = asyncio.run(collect(model.structured_output(Order, prompt, system_prompt="be brief")))
    second = asyncio.run(collect(model.structured_output(Order, prompt)))

    assert first[-1] == {"output": Order(item="fries", quantity=2)}
    assert second[-1] == {"output": Order(item="cola", quantity=1)}
    assert model.requests[0].output_model is Order
    assert model.requests[0].system_prompt == "be brief"
    with pytest.raises(ValidationError, match="quantity"):
        asyncio.run(collect(model.structured_output(Order, prompt)))


def test_parallel_agents_share_one_script_and_play_each_turn_once() -> None:
    threads, calls_each = 8, 10
    model = ScriptedModel([{"text": f"answer {n}"} for n in range(threads * calls_each)])
    answers: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        bar = agent(model)
        for _ in range(calls_each):
            text = str(bar("next")).strip()
            with lock:
                answers.append(text)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers)

    assert sorted(answers) == sorted(f"answer {n}" for n in range(threads * calls_each))
    assert model.remaining == 0
    with pytest.raises(ScriptExhaustedError):
        agent(model)("one more")
