"""The local model provider's turn logic, over a fake llama.cpp that replays recorded Qwen2.5-Coder completions.

What is checked: tool calls become ``toolUse`` blocks; a forced tool (or a lone structured output tool) is
grammar-constrained; a reply that only repeats answered calls is replaced by an answer without tools; usage is
reported; the chat template gets tool calls and named tool results. The real model runs in tests/llm/.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field
from strands import Agent

from wrapper._chat_prompt import chat_messages
from wrapper.call_checks import call_checks
from wrapper.exceptions import ModelConfigurationError
from wrapper.field_checks import FieldRefused, field_checks
from wrapper.local_model import LocalModel, _Loaded
from wrapper.sampling import sampled

DEPLOYS_SPEC: dict[str, Any] = {
    "name": "recent_deploys",
    "description": "Lists the deployments of a service.",
    "inputSchema": {"json": {"type": "object", "properties": {"service": {"type": "string"}}, "required": ["service"]}},
}


class FakeLlama:
    """Plays llama.cpp's ``create_completion``: returns the given texts in order and records each request."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.requests: list[dict[str, Any]] = []

    def create_completion(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        self.requests.append({"prompt": prompt, **kwargs})
        text = self.texts.pop(0)
        return {
            "choices": [{"text": text, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(text) // 4},
        }


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return path


def model_with(gguf: Path, texts: Sequence[str], **config: Any) -> tuple[LocalModel, FakeLlama]:
    model = LocalModel(str(gguf), **config)
    fake = FakeLlama(texts)
    loaded = _Loaded(fake, None, threading.Lock())  # no template in the file: the built-in ChatML rendering
    model._load = lambda: loaded  # type: ignore[method-assign]
    return model, fake


def run(model: LocalModel, messages: list[dict[str, Any]], specs: list[dict[str, Any]], **kwargs: Any) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in model.stream(messages, specs, "system", **kwargs)]  # type: ignore[arg-type]

    return asyncio.run(collect())


def tool_uses(events: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    names = [
        e["contentBlockStart"]["start"]["toolUse"]["name"]
        for e in events
        if "toolUse" in e.get("contentBlockStart", {}).get("start", {})
    ]
    inputs = [
        json.loads(e["contentBlockDelta"]["delta"]["toolUse"]["input"])
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    return list(zip(names, inputs, strict=True))


def after_deploys(question: str) -> list[dict[str, Any]]:
    """A conversation in which ``recent_deploys`` was called and answered ("07:58")."""
    return [
        {"role": "user", "content": [{"text": question}]},
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "t1", "name": "recent_deploys", "input": {"service": "x"}}}],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "t1", "status": "success", "content": [{"text": "07:58"}]}}],
        },
    ]


def test_fenced_call_becomes_a_tool_use(gguf: Path) -> None:
    model, fake = model_with(
        gguf, ['```json\n{"name": "recent_deploys", "arguments": {"service": "checkout-api"}}\n```']
    )
    events = run(model, [{"role": "user", "content": [{"text": "what changed?"}]}], [DEPLOYS_SPEC])
    assert tool_uses(events) == [("recent_deploys", {"service": "checkout-api"})]
    assert events[-2] == {"messageStop": {"stopReason": "tool_use"}}
    usage = events[-1]["metadata"]["usage"]
    assert usage["inputTokens"] > 0 and usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]
    assert fake.requests[0]["grammar"] is not None  # tool turns are constrained to calls or an answer
    assert '"name": "recent_deploys"' in fake.requests[0]["prompt"]  # the tools are in the prompt
    assert fake.requests[0]["temperature"] == 0.0 and fake.requests[0]["seed"] == 0


def test_unconstrained_tool_turn(gguf: Path) -> None:
    model, fake = model_with(
        gguf, ['I call it:\n```json\n{"name": "recent_deploys", "arguments": {"service": "x"}}\n```']
    )
    model.update_config(constrain_tools=False)
    events = run(model, [{"role": "user", "content": [{"text": "go"}]}], [DEPLOYS_SPEC])
    assert tool_uses(events) == [("recent_deploys", {"service": "x"})]
    assert fake.requests[0]["grammar"] is None


def test_forced_tool_is_written_as_free_json_first(gguf: Path) -> None:
    model, fake = model_with(gguf, ['{"service": "x"}'])
    events = run(
        model,
        [{"role": "user", "content": [{"text": "go"}]}],
        [DEPLOYS_SPEC],
        tool_choice={"tool": {"name": "recent_deploys"}},
    )
    assert tool_uses(events) == [("recent_deploys", {"service": "x"})]
    (request,) = fake.requests
    assert request["grammar"] is None and request["prompt"].endswith("```json\n") and "```" in request["stop"]
    # The fields are asked for in words; no tool listing for the model to copy from.
    assert "- service (string, required)" in request["prompt"]
    assert "<tools>" not in request["prompt"]


@pytest.mark.parametrize("free", ['{"service": 3}', "Sure! service = x", '["x"]', '{"hours": 2}'])
def test_forced_tool_is_grammar_constrained_when_the_free_json_does_not_fit(gguf: Path, free: str) -> None:
    model, fake = model_with(gguf, [free, '{"service": "x"}'])
    events = run(
        model,
        [{"role": "user", "content": [{"text": "go"}]}],
        [DEPLOYS_SPEC],
        tool_choice={"tool": {"name": "recent_deploys"}},
    )
    assert tool_uses(events) == [("recent_deploys", {"service": "x"})]
    first, second = fake.requests
    assert first["grammar"] is None and second["grammar"] is not None
    assert second["prompt"] + "```json\n" == first["prompt"]  # the same question, now under the grammar


def test_json_first_can_be_turned_off(gguf: Path) -> None:
    model, fake = model_with(gguf, ['{"service": "x"}'], json_first=False)
    run(
        model,
        [{"role": "user", "content": [{"text": "go"}]}],
        [DEPLOYS_SPEC],
        tool_choice={"tool": {"name": "recent_deploys"}},
    )
    assert len(fake.requests) == 1 and fake.requests[0]["grammar"] is not None


def test_repeated_call_after_its_result_asks_for_the_answer(gguf: Path) -> None:
    repeat = '<tool_call>\n{"name": "recent_deploys", "arguments": {"service": "x"}}\n</tool_call>'
    model, fake = model_with(gguf, [repeat, "x was deployed at 07:58."])
    messages = after_deploys("what changed?")
    events = run(model, messages, [DEPLOYS_SPEC])
    assert tool_uses(events) == []
    assert [
        e["contentBlockDelta"]["delta"]["text"]
        for e in events
        if "text" in e.get("contentBlockDelta", {}).get("delta", {})
    ] == ["x was deployed at 07:58."]
    assert len(fake.requests) == 2
    # The same prompt, then the request for the answer: its evaluation is reused; the grammar allows no call.
    assert fake.requests[1]["prompt"].startswith(fake.requests[0]["prompt"].rsplit("<|im_start|>assistant", 1)[0])
    assert "Do not call any tool" in fake.requests[1]["prompt"]
    assert "tool_call" not in fake.requests[1]["grammar"]._grammar

    model, fake = model_with(gguf, [repeat, "x was deployed at 07:58."])
    model.update_config(constrain_tools=False)
    run(model, messages, [DEPLOYS_SPEC])
    assert "recent_deploys" not in fake.requests[1]["prompt"].split("<|im_start|>user")[0]  # no tools offered
    assert fake.requests[1]["grammar"] is None


def test_a_call_repeated_within_the_reply_runs_once(gguf: Path) -> None:
    call = '<tool_call>\n{"name": "recent_deploys", "arguments": {"service": "x"}}\n</tool_call>'
    other = '<tool_call>\n{"name": "recent_deploys", "arguments": {"service": "y"}}\n</tool_call>'
    model, _ = model_with(gguf, ["\n".join([call, other, call, other, call])])
    model.update_config(parallel_tool_calls=True)
    events = run(model, [{"role": "user", "content": [{"text": "go"}]}], [DEPLOYS_SPEC])
    assert tool_uses(events) == [("recent_deploys", {"service": "x"}), ("recent_deploys", {"service": "y"})]


PAGER_SPEC: dict[str, Any] = {
    "name": "pager",
    "description": "Pages on-call.",
    "inputSchema": {"json": {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}},
}


def _call(name: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def test_calls_whose_values_the_model_has_seen_run_in_one_wave(gguf: Path) -> None:
    asked = [{"role": "user", "content": [{"text": "Alarms on checkout-api and on Payments; page on-call."}]}]
    reply = "\n".join(
        [
            _call("recent_deploys", service="checkout-api"),
            _call("recent_deploys", service="payments"),  # seen (case is ignored)
            _call("pager", summary="checkout-api broke after deploy 2026.11.29-1"),  # a version it has not read
        ]
    )
    model, fake = model_with(gguf, [reply])
    events = run(model, asked, [DEPLOYS_SPEC, PAGER_SPEC])
    assert tool_uses(events) == [
        ("recent_deploys", {"service": "checkout-api"}),
        ("recent_deploys", {"service": "payments"}),
    ]
    assert model.deferred_calls == 1
    assert ")*" in fake.requests[0]["grammar"]._grammar.split("calls ::=")[1].splitlines()[0]  # several calls allowed


def test_the_first_call_always_runs_and_later_invented_values_wait(gguf: Path) -> None:
    asked = [{"role": "user", "content": [{"text": "go"}]}]
    reply = _call("recent_deploys", service="x") + "\n" + _call("recent_deploys", service="y")
    model, _ = model_with(gguf, [reply])
    events = run(model, asked, [DEPLOYS_SPEC, PAGER_SPEC])
    assert tool_uses(events) == [("recent_deploys", {"service": "x"})]  # "x" is made up too, but it goes first


@pytest.mark.parametrize(("setting", "calls"), [(False, 1), ("off", 1), (True, 2), ("all", 2), ("grounded", 1)])
def test_parallel_tool_calls_settings(gguf: Path, setting: Any, calls: int) -> None:
    reply = _call("recent_deploys", service="x") + "\n" + _call("pager", summary="made up")
    model, fake = model_with(gguf, [reply], parallel_tool_calls=setting)
    events = run(model, [{"role": "user", "content": [{"text": "go"}]}], [DEPLOYS_SPEC, PAGER_SPEC])
    assert len(tool_uses(events)) == calls
    several = ")*" in fake.requests[0]["grammar"]._grammar.split("calls ::=")[1].splitlines()[0]
    assert several is (setting not in (False, "off"))


def test_an_unknown_parallel_setting_is_refused(gguf: Path) -> None:
    model, _ = model_with(gguf, ["done."], parallel_tool_calls="sometimes")
    with pytest.raises(ModelConfigurationError, match="parallel_tool_calls"):
        run(model, [{"role": "user", "content": [{"text": "go"}]}], [DEPLOYS_SPEC])


def test_after_a_repeated_call_the_turn_is_asked_again_with_the_tools_not_called_yet(gguf: Path) -> None:
    repeat = '<tool_call>\n{"name": "recent_deploys", "arguments": {"service": "x"}}\n</tool_call>'
    page = '<tool_call>\n{"name": "pager", "arguments": {"summary": "x deployed at 07:58"}}\n</tool_call>'
    model, fake = model_with(gguf, [repeat, page])
    messages = after_deploys("what changed? page on-call")
    events = run(model, messages, [DEPLOYS_SPEC, PAGER_SPEC])
    assert tool_uses(events) == [("pager", {"summary": "x deployed at 07:58"})]
    assert len(fake.requests) == 2
    assert fake.requests[1]["prompt"] == fake.requests[0]["prompt"]  # the same prompt: its evaluation is reused
    assert "recent_deploys" in fake.requests[0]["grammar"]._grammar
    assert "recent_deploys" not in fake.requests[1]["grammar"]._grammar
    usage = events[-1]["metadata"]["usage"]
    assert usage["inputTokens"] == 2 * (len(fake.requests[0]["prompt"]) // 4)  # both requests are counted


@pytest.mark.parametrize(
    "answer",
    [
        "There is no need to call the pager: x was deployed at 07:58 and has recovered.",
        "Do not call pager; x recovered after the 07:58 deploy.",
        'The runbook says "call the pager with the summary" only for sev1; this is sev3.',
        "To page on-call, call the pager with the summary that x was deployed at 07:58.",
        "recent_deploys says x was deployed at 07:58; the pagers are quiet.",
    ],
)
def test_an_answer_that_mentions_a_tool_is_an_answer_never_a_call(gguf: Path, answer: str) -> None:
    model, fake = model_with(gguf, [answer])
    events = run(model, after_deploys("what changed? page on-call if needed"), [DEPLOYS_SPEC, PAGER_SPEC])
    assert tool_uses(events) == []
    assert len(fake.requests) == 1  # not asked again under a grammar that can only be a call
    assert events[-2] == {"messageStop": {"stopReason": "end_turn"}}


def test_structured_output_through_an_agent_takes_one_call(gguf: Path) -> None:
    class Verdict(BaseModel):
        service: str
        rollback: bool

    model, fake = model_with(gguf, ['{"service": "checkout-api", "rollback": true}'])
    result = Agent(model=model, callback_handler=None)("decide", structured_output_model=Verdict)
    assert result.structured_output == Verdict(service="checkout-api", rollback=True)
    assert len(fake.requests) == 1 and fake.requests[0]["prompt"].endswith("```json\n")
    assert "StructuredOutputTool" not in fake.requests[0]["prompt"]


def test_structured_output_method(gguf: Path) -> None:
    class Verdict(BaseModel):
        rollback: bool

    model, _ = model_with(gguf, ['{"rollback": false}'])

    async def collect() -> list[Any]:
        return [e async for e in model.structured_output(Verdict, [{"role": "user", "content": [{"text": "?"}]}])]

    events = asyncio.run(collect())
    assert events[-1] == {"output": Verdict(rollback=False)}
    assert events[0]["event"]["metadata"]["usage"]["outputTokens"] > 0


def test_a_code_field_is_written_as_a_code_block_then_the_rest_as_json(gguf: Path) -> None:
    class Module(BaseModel):
        name: str
        code: str = Field(json_schema_extra={"contentMediaType": "text/x-python"})

    code = 'import re\n\ndef handler(text: str) -> dict:\n    return {"n": len(re.findall(r"\\d+", text))}\n'
    model, fake = model_with(gguf, [code, '{"name": 1}', '{"name": "number_counter"}'])
    result = Agent(model=model, callback_handler=None)("count numbers", structured_output_model=Module)
    assert result.structured_output == Module(name="number_counter", code=code)  # backslashes as written
    first, second, third = fake.requests
    assert first["prompt"].endswith("```python\n") and "```" in first["stop"] and first["grammar"] is None
    assert "`code`" in first["prompt"]
    assert "```python\n" + code + "```" in second["prompt"]  # the code is in the conversation ...
    assert "- name (string, required)" in second["prompt"] and "- code" not in second["prompt"]
    assert second["grammar"] is None  # free JSON first; {"name": 1} does not fit, so under the grammar:
    assert "code" not in third["grammar"]._grammar  # ... and no longer in the object asked for


def test_a_code_field_the_caller_refuses_ends_the_answer_before_the_rest(gguf: Path) -> None:
    class Module(BaseModel):
        name: str
        code: str = Field(json_schema_extra={"contentMediaType": "text/x-python"})

    code = "def handler(text):\n    return {}\n"
    prompt: Any = [{"role": "user", "content": [{"text": "count"}]}]
    model, fake = model_with(gguf, [code, '{"name": "never_asked"}'])
    seen: list[str] = []
    events: list[Any] = []

    def refuse(value: str) -> str | None:
        seen.append(value)
        return "handler(text='a') returned {}; expected {'n': 0}"

    async def collect() -> None:
        async for event in model.structured_output(Module, prompt):
            events.append(event)

    with field_checks({"code": refuse}), pytest.raises(FieldRefused) as refused:
        asyncio.run(collect())
    assert (refused.value.field, refused.value.value) == ("code", code)
    assert "expected {'n': 0}" in refused.value.problem
    assert seen == [code] and len(fake.requests) == 1  # the name was never asked for
    assert events[0]["event"]["metadata"]["usage"]["outputTokens"] > 0  # the code's tokens are still reported

    accepted, fake = model_with(gguf, [code, '{"name": "empty_counter"}'])
    with field_checks({"code": lambda value: None}):
        result = Agent(model=accepted, callback_handler=None)("count", structured_output_model=Module)
    assert result.structured_output == Module(name="empty_counter", code=code) and len(fake.requests) == 2


def test_tool_results_are_named_for_the_template() -> None:
    messages = [
        {
            "role": "assistant",
            "content": [{"text": "checking"}, {"toolUse": {"toolUseId": "t1", "name": "pager", "input": {"a": 1}}}],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "t1", "status": "error", "content": [{"text": "boom"}]}},
                {"text": "notes"},
            ],
        },
    ]
    assert chat_messages(messages, "sys") == [  # type: ignore[arg-type]
        {"role": "system", "content": "sys"},
        {
            "role": "assistant",
            "content": "checking",
            "tool_calls": [{"type": "function", "function": {"name": "pager", "arguments": {"a": 1}}}],
        },
        {"role": "tool", "content": "pager (error): boom"},
        {"role": "user", "content": "notes"},
    ]


def test_bad_settings_and_missing_model(gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelConfigurationError, match="unknown local model settings: temprature"):
        LocalModel(str(gguf), temprature=0)
    monkeypatch.setenv("ARBITER_MODELS_DIR", str(tmp_path / "none"))
    with pytest.raises(ModelConfigurationError, match=r"arbiter models pull qwen2\.5-coder-1\.5b"):
        LocalModel("qwen2.5-coder-1.5b")


def test_every_completion_is_counted_with_its_figures(gguf: Path) -> None:
    model, fake = model_with(
        gguf, ['<tool_call>\n{"name": "recent_deploys", "arguments": {"service": "x"}}\n</tool_call>']
    )
    run(model, [{"role": "user", "content": [{"text": "what changed?"}]}], [DEPLOYS_SPEC])
    (figures,) = model.calls
    assert figures.constrained and figures.generated > 0 and figures.prompt_tokens > 0
    assert fake.requests[0]["grammar"] is not None  # no native llama.cpp here: its grammar sampler, not the gate
    assert "logits_processor" not in fake.requests[0]


def test_a_reply_stops_after_a_call_that_would_not_run_or_repeats() -> None:
    from wrapper.grounding import context_text
    from wrapper.local_model import _calls_done

    seen = context_text([{"role": "user", "content": [{"text": "checkout-api and payments are failing"}]}], None, [])
    names = {"recent_deploys", "pager"}
    first = _call("recent_deploys", service="checkout-api")
    assert not _calls_done(first, names, seen)  # the first call always runs: go on
    assert not _calls_done(first + "\n" + _call("recent_deploys", service="payments"), names, seen)  # grounded
    assert not _calls_done(first + "\n<tool_call>\n", names, seen)  # a call being written
    assert _calls_done(first + "\n" + _call("pager", summary="deploy 1.2.3 broke it"), names, seen)  # deferred
    assert _calls_done(first + "\n" + first, names, seen)  # a repeat


def test_a_reply_stops_at_a_call_the_conversation_has_the_result_of() -> None:
    from wrapper.local_model import _answered_calls, _calls_done

    messages = [
        {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "recent_deploys", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "status": "success", "content": []}}]},
    ]
    messages[0]["content"][0]["toolUse"]["input"] = {"service": "checkout-api"}
    answered = frozenset(_answered_calls(messages))
    names = {"recent_deploys", "pager"}
    again = _call("recent_deploys", service="checkout-api")
    assert _calls_done(again, names, "", answered)  # written out again, first: it will not run, stop here
    assert not _calls_done(_call("recent_deploys", service="payments"), names, "", answered)  # a new call
    assert not _calls_done(again, names, "", frozenset())  # without a result it is a call like any other
    pending = [{"role": "assistant", "content": messages[0]["content"]}]  # a call whose result is not in yet
    assert not _calls_done(again, names, "", frozenset(_answered_calls(pending)))


def test_a_free_json_reply_with_quotes_inside_a_string_value_is_mended(gguf: Path) -> None:
    free = '{\n  "service": "the "checkout" API",\n  "note": "already \\"escaped\\""\n}'
    spec = {**DEPLOYS_SPEC, "inputSchema": {"json": {"type": "object", "properties": {"service": {"type": "string"}}}}}
    model, fake = model_with(gguf, [free])
    events = run(
        model, [{"role": "user", "content": [{"text": "go"}]}], [spec], tool_choice={"tool": {"name": "recent_deploys"}}
    )
    assert tool_uses(events) == [("recent_deploys", {"service": 'the "checkout" API', "note": 'already "escaped"'})]
    assert len(fake.requests) == 1  # no second request under the grammar


def test_a_reused_prefix_is_cut_back_to_a_batch_boundary() -> None:
    from types import SimpleNamespace

    from wrapper.local_model import _align_reuse

    removed: list[int] = []
    calls: list[int] = []
    llama = SimpleNamespace(
        _input_ids=list(range(300)),
        n_tokens=300,
        _ctx=SimpleNamespace(kv_cache_seq_rm=lambda seq, start, end: removed.append(start)),
        generate=lambda tokens, **kwargs: calls.append(len(tokens)),
    )
    _align_reuse(llama, 128)
    llama.generate([*range(290), 7, 8])  # 290 tokens in common: 256 are kept, the rest is evaluated again
    assert removed == [256] and llama.n_tokens == 256 and calls == [292]
    llama._input_ids = list(range(256))
    llama.generate([*range(256), 1])  # already on a boundary: nothing removed
    assert removed == [256] and llama.n_tokens == 256


def test_a_sampling_block_samples_its_own_calls_only(gguf: Path) -> None:
    class Verdict(BaseModel):
        rollback: bool

    model, fake = model_with(gguf, ['{"rollback": false}'] * 3)

    def ask() -> None:
        async def collect() -> list[Any]:
            return [e async for e in model.structured_output(Verdict, [{"role": "user", "content": [{"text": "?"}]}])]

        asyncio.run(collect())

    ask()
    with sampled(temperature=0.7, seed=3):
        ask()
    ask()
    assert [(r["temperature"], r["seed"]) for r in fake.requests] == [(0.0, 0), (0.7, 3), (0.0, 0)]
    assert model.get_config()["temperature"] == 0.0  # the model's own settings never changed
    with pytest.raises(ValueError, match="above 0"), sampled(temperature=0, seed=1):
        pass


FABRICATE_SPEC: dict[str, Any] = {
    "name": "fabricate",
    "description": "Makes a worker.",
    "inputSchema": {"json": {"type": "object", "properties": {"capability": {"type": "string"}}}},
}


def _no_deploy_readers(fields: Any) -> str | None:
    return "recent_deploys does this" if "deploy" in str(fields.get("capability", "")) else None


def test_a_call_the_callers_check_refuses_is_dropped_with_what_follows_it(gguf: Path) -> None:
    refused = _call("fabricate", capability="list the deploys of x")
    reply = _call("pager", summary="x deployed at 07:58") + "\n" + refused + "\n" + _call("pager", summary="again")
    model, fake = model_with(gguf, [reply])
    with call_checks({"fabricate": _no_deploy_readers}):
        events = run(model, after_deploys("page on-call"), [DEPLOYS_SPEC, PAGER_SPEC, FABRICATE_SPEC])
    assert tool_uses(events) == [("pager", {"summary": "x deployed at 07:58"})]
    assert len(fake.requests) == 1 and model.refused_calls == 1


def test_after_a_refused_call_the_turn_is_asked_again_without_that_tool(gguf: Path) -> None:
    refused = _call("fabricate", capability="list the deploys of x")
    model, fake = model_with(gguf, [refused, _call("pager", summary="x deployed at 07:58")])
    with call_checks({"fabricate": _no_deploy_readers}):
        events = run(model, after_deploys("page on-call"), [DEPLOYS_SPEC, PAGER_SPEC, FABRICATE_SPEC])
    assert tool_uses(events) == [("pager", {"summary": "x deployed at 07:58"})]
    assert len(fake.requests) == 2 and fake.requests[1]["prompt"] == fake.requests[0]["prompt"]
    assert "fabricate" in fake.requests[0]["grammar"]._grammar
    assert "fabricate" not in fake.requests[1]["grammar"]._grammar

    # Without the check the same reply is a call like any other.
    model, fake = model_with(gguf, [refused])
    events = run(model, after_deploys("page on-call"), [DEPLOYS_SPEC, PAGER_SPEC, FABRICATE_SPEC])
    assert tool_uses(events) == [("fabricate", {"capability": "list the deploys of x"})]


def test_a_call_cut_off_at_the_token_limit_is_never_the_answer(gguf: Path) -> None:
    runaway = (
        "Steps:\n<tool_call>\n"
        + '{"name": "fabricate", "arguments": {"capability": "x", "inputs": {'
        + ('"inputs": "Create a new worker", ' * 40)
    )
    model, fake = model_with(gguf, [runaway, "x was deployed at 07:58; nothing else is needed."])
    events = run(model, after_deploys("what changed?"), [DEPLOYS_SPEC, FABRICATE_SPEC])
    texts = [
        e["contentBlockDelta"]["delta"]["text"]
        for e in events
        if "text" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    assert tool_uses(events) == []
    assert texts == ["x was deployed at 07:58; nothing else is needed."]
    assert len(fake.requests) == 2 and "fabricate" not in fake.requests[1]["grammar"]._grammar
    assert model.refused_calls == 1

    # Whose tool cannot even be read: the answer is asked for at once.
    model, fake = model_with(gguf, ["Steps:\n<tool_call>\n{", "x was deployed at 07:58."])
    events = run(model, after_deploys("what changed?"), [DEPLOYS_SPEC, FABRICATE_SPEC])
    assert tool_uses(events) == [] and "tool_call" not in fake.requests[1]["grammar"]._grammar


def test_a_cut_off_call_of_a_tool_not_offered_asks_for_the_answer_at_once(gguf: Path) -> None:
    ghost = 'Steps:\n<tool_call>\n{"name": "ghost", "arguments": {"x": "never clo'
    model, fake = model_with(gguf, [ghost, ghost, "x was deployed at 07:58."])
    events = run(model, after_deploys("what changed?"), [DEPLOYS_SPEC, PAGER_SPEC])
    assert tool_uses(events) == []
    assert len(fake.requests) == 2 and "tool_call" not in fake.requests[1]["grammar"]._grammar
