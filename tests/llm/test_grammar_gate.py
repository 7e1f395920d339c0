"""The grammar gate writes what llama.cpp's grammar sampler writes, with the real model (greedy decoding)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wrapper.local_model import LocalModel, _json_grammar, _tool_turn_grammar
from wrapper.model_store import installed_path

pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]

MODEL = "qwen2.5-coder-1.5b"
DEPLOYS = {
    "name": "recent_deploys",
    "description": "Lists the deployments of a service in the last hours.",
    "inputSchema": {"json": {"type": "object", "properties": {"service": {"type": "string"}}, "required": ["service"]}},
}
PAGE = {
    "type": "object",
    "properties": {
        "service": {"type": "string"},
        "severity": {"enum": ["sev1", "sev2", "sev3"]},
        "count": {"type": "integer"},
    },
    "required": ["service", "severity", "count"],
}


@pytest.fixture(scope="module")
def path() -> Path:
    found = installed_path(MODEL)
    if found is None:
        pytest.fail(f"the local model is not installed: run `arbiter models pull {MODEL}` (or `make test`)")
    return found


def _chat(text: str) -> str:
    return f"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize(
    ("prompt", "grammar", "refused"),
    [
        (_chat("checkout-api alarms since 07:58. Call a tool."), lambda: _tool_turn_grammar([DEPLOYS], False), False),  # type: ignore[list-item]
        (_chat("Page sev2 for checkout-api, 3 errors. Reply in JSON."), lambda: _json_grammar(PAGE), True),
        # The model's own choice breaks the grammar at once: every token is matched (the slow path).
        (_chat("Say hello in French."), lambda: _json_grammar(PAGE), True),
    ],
)
def test_the_gate_writes_what_the_grammar_sampler_writes(
    path: Path, prompt: str, grammar: object, refused: bool
) -> None:
    texts, figures = [], []
    for fast in (False, True):
        model = LocalModel(
            str(path), temperature=0.0, fast_grammar=fast, prompt_cache_bytes=0, prompt_state_bytes=0, max_tokens=96
        )
        loaded = model._load()
        # From an empty context both times: a prompt evaluated in other batches gets slightly other logits, and
        # greedy decoding can then break a near tie the other way.
        loaded.llama.reset()
        text, _ = model._complete(loaded, prompt, grammar(), forced=False)  # type: ignore[operator]
        texts.append(text)
        figures.append(model.calls[-1])
    assert texts[0] == texts[1]
    assert figures[0].full_checks == 0 and figures[1].constrained
    assert (figures[1].full_checks > 0) is refused  # the whole vocabulary is matched only where the model strays
    if texts[1].lstrip().startswith("{"):
        json.loads(texts[1])  # a JSON grammar's text parses
