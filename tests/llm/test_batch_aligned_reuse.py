"""A prompt continued from an earlier one gets the same logits as the same prompt evaluated from the start.

Without it, the same conversation could get another greedy reply depending on what was cached (a saved state, the
previous turn), because llama.cpp's results depend slightly on the batches a prompt was cut into.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import pytest

from wrapper.local_model import LocalModel
from wrapper.model_store import installed_path

pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]

MODEL = "qwen2.5-coder-1.5b"
STEM = "The checkout API raised an alarm: 3 datapoints [41.0, 57.0, 66.0] above the threshold (25.0). " * 6


@pytest.fixture(scope="module")
def path() -> Path:
    found = installed_path(MODEL)
    if found is None:
        pytest.fail(f"the local model is not installed: run `arbiter models pull {MODEL}` (or `make test`)")
    return found


def _first_logits(model: LocalModel, prompt: str) -> Any:
    seen: list[Any] = []

    def spy(input_ids: Any, scores: Any) -> Any:
        if not seen:
            seen.append(np.array(scores, copy=True))
        return scores

    loaded = model._load()
    loaded.llama.create_completion(
        prompt, max_tokens=1, temperature=0.0, logits_processor=llama_cpp.LogitsProcessorList([spy])
    )
    return seen[0]


def test_a_continued_prompt_gets_the_logits_of_a_fresh_one(path: Path) -> None:
    model = LocalModel(str(path), prompt_cache_bytes=0, prompt_state_bytes=0)
    llama = model._load().llama
    prompt = STEM + "Which service is failing? Answer:"
    llama.reset()
    fresh = _first_logits(model, prompt)
    # Another prompt with the same start, then the first again: its start is taken from the context, not evaluated.
    _first_logits(model, STEM + "How many datapoints are there? Answer:")
    continued = _first_logits(model, prompt)
    assert np.array_equal(fresh, continued)
