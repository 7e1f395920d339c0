"""Prompt states on disk, seen from :class:`LocalModel`: a new process loads a saved prompt start instead of evaluating
it, and whatever is wrong with a saved state costs a log line and a fresh evaluation, never a failure.

llama.cpp is played by a fake that follows ``Llama.create_completion``'s use of the prompt cache (look up, load a
longer state, evaluate from the common prefix, store the state after the completion) and counts evaluated tokens;
a process is played by emptying the loaded-model registry.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import llama_cpp
import numpy as np
import pytest
from llama_cpp.llama import LlamaState

from wrapper import local_model
from wrapper._chat_prompt import render_prompt
from wrapper.exceptions import ModelConfigurationError
from wrapper.local_model import LocalModel

N_CTX = 4096
SYSTEM = "You are the Arbiter. " * 40  # a long static start: system prompt and tools
MESSAGES = [{"role": "user", "content": [{"text": "Event: the checkout API is slow."}]}]
OTHER_MESSAGES = [{"role": "user", "content": [{"text": "Event: invoice INV-7 is overdue."}]}]


class FakeStatefulLlama:
    """Plays llama.cpp's context: one token per character, a state that is the bytes of the tokens it holds."""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.metadata: dict[str, str] = {}
        self.input_ids = np.zeros(N_CTX, dtype=np.intc)
        self.n_tokens = 0
        self.n_batch = params.get("n_batch", 512)
        self.context_params = llama_cpp.llama_context_default_params()
        self.cache: Any = None
        self.evaluated: list[int] = []
        self.refuse_states = False
        self.ctx = self  # what llama.cpp's per-context functions are given (played below)

    def n_ctx(self) -> int:
        return N_CTX

    def set_cache(self, cache: Any) -> None:
        self.cache = cache

    def generate(self, tokens: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("create_completion is played whole here; generate is not called")

    def save_state(self) -> LlamaState:
        data = self.input_ids[: self.n_tokens].tobytes()
        return LlamaState(self.input_ids.copy(), np.zeros((4, 8), np.single), self.n_tokens, data, len(data), 0)

    def load_state(self, state: LlamaState) -> None:
        self.input_ids = state.input_ids.copy()
        self.n_tokens = state.n_tokens
        if self.refuse_states or state.llama_state != self.input_ids[: self.n_tokens].tobytes():
            raise RuntimeError("Failed to set llama state data")

    def create_completion(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        tokens = [ord(c) for c in prompt]
        if self.cache is not None:
            try:
                item = self.cache[tokens]
                if _shared(item.input_ids, tokens) > _shared(self.input_ids[: self.n_tokens], tokens):
                    self.load_state(item)
            except KeyError:
                pass
        reuse = _shared(self.input_ids[: self.n_tokens], tokens)
        reuse = min(reuse, len(tokens) - 1)  # the last prompt token is always evaluated, for fresh logits
        self.evaluated.append(len(tokens) - reuse)
        text = "The checkout API is slow."
        held = [*tokens, *(ord(c) for c in text)][:-1]  # the last sampled token is not evaluated
        self.input_ids[: len(held)] = held
        self.n_tokens = len(held)
        if self.cache is not None:
            self.cache[[*tokens, *(ord(c) for c in text)]] = self.save_state()
        return {
            "choices": [{"text": text, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(tokens), "completion_tokens": len(text)},
        }


def _shared(a: Any, b: list[int]) -> int:
    n = 0
    for x, y in zip(list(a), b, strict=False):
        if x != y:
            break
        n += 1
    return n


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def processes(monkeypatch: pytest.MonkeyPatch) -> list[FakeStatefulLlama]:
    """Every fake llama made; each ``_load`` after ``new_process`` makes a new one."""
    made: list[FakeStatefulLlama] = []

    def make(**params: Any) -> FakeStatefulLlama:
        made.append(FakeStatefulLlama(**params))
        return made[-1]

    monkeypatch.setattr(local_model.llama_cpp, "Llama", make)
    monkeypatch.setattr(local_model.llama_cpp, "llama_set_n_threads", lambda ctx, n, batch: None)
    monkeypatch.setattr(local_model.llama_cpp, "llama_perf_context_reset", lambda ctx: None)
    monkeypatch.setattr(
        local_model.llama_cpp,
        "llama_perf_context",
        lambda ctx: SimpleNamespace(n_p_eval=ctx.evaluated[-1], t_p_eval_ms=0.0, t_eval_ms=0.0),
    )
    monkeypatch.setattr(local_model, "_LOADED", {})
    return made


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_model, "_LOADED", {})


def turn(gguf: Path, states: Path, messages: list[dict[str, Any]] = MESSAGES, **config: Any) -> str:
    model = LocalModel(str(gguf), prompt_state_dir=str(states), constrain_tools=False, n_threads=1, **config)
    return model._turn(messages, [], SYSTEM, None).text  # type: ignore[arg-type]


def prompt_of(messages: list[dict[str, Any]]) -> str:
    return render_prompt(None, messages, [], SYSTEM)  # type: ignore[arg-type]


def shared_start(a: str, b: str) -> int:
    return _shared([ord(c) for c in a], [ord(c) for c in b])


def saved(states: Path) -> list[Path]:
    return sorted(states.glob("*.state"))


@pytest.mark.parametrize("memory", [1 << 30, 0])
def test_a_new_process_loads_the_saved_start_and_evaluates_only_the_rest(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: list[FakeStatefulLlama], memory: int
) -> None:
    states = tmp_path / "states"
    assert turn(gguf, states, prompt_cache_bytes=memory) == "The checkout API is slow."
    assert processes[0].evaluated == [len(prompt_of(MESSAGES))]  # cold: everything
    assert len(saved(states)) == 1
    new_process(monkeypatch)
    assert turn(gguf, states, OTHER_MESSAGES, prompt_cache_bytes=memory) == "The checkout API is slow."
    assert len(processes) == 2
    # Only where the other event's prompt differs from the saved one: the system part was loaded from disk.
    shared = shared_start(prompt_of(MESSAGES), prompt_of(OTHER_MESSAGES))
    assert shared > len(SYSTEM)
    assert processes[1].evaluated == [len(prompt_of(OTHER_MESSAGES)) - shared]
    assert len(saved(states)) == 1  # mostly covered by the saved state: not saved again


def test_a_growing_conversation_is_saved_again_only_when_it_outgrows_the_saved_one(
    gguf: Path, tmp_path: Path, processes: list[FakeStatefulLlama], caplog: pytest.LogCaptureFixture
) -> None:
    states = tmp_path / "states"
    turn(gguf, states)
    longer = [*MESSAGES, {"role": "assistant", "content": [{"text": "Noted."}]}, *OTHER_MESSAGES]
    with caplog.at_level(logging.DEBUG, logger="wrapper.local_model"):
        turn(gguf, states, longer)
    assert "loaded from disk" not in caplog.text  # the state in memory is as long: the file is not read
    assert processes[0].evaluated[1] == len(prompt_of(longer)) - shared_start(prompt_of(MESSAGES), prompt_of(longer))
    assert len(saved(states)) == 1
    much_longer = [*longer, {"role": "user", "content": [{"text": "More detail. " * 200}]}]
    turn(gguf, states, much_longer)
    assert len(saved(states)) == 2


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else data[:-3] + b"xyz")


@pytest.mark.parametrize("how", ["truncated", "flipped"])
def test_a_damaged_state_is_removed_and_the_prompt_evaluated_afresh(
    gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    processes: list[FakeStatefulLlama],
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    states = tmp_path / "states"
    turn(gguf, states)
    (path,) = saved(states)
    _damage(path, how)
    new_process(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="wrapper._prompt_states"):
        assert turn(gguf, states, OTHER_MESSAGES) == "The checkout API is slow."
    assert processes[1].evaluated == [len(prompt_of(OTHER_MESSAGES))]
    assert "corrupt prompt state removed" in caplog.text
    assert path not in saved(states) and len(saved(states)) == 1  # the new process saved its own, whole


def test_a_state_llama_cpp_refuses_is_removed_and_the_prompt_evaluated_afresh(
    gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    processes: list[FakeStatefulLlama],
    caplog: pytest.LogCaptureFixture,
) -> None:
    states = tmp_path / "states"
    turn(gguf, states)
    (path,) = saved(states)
    new_process(monkeypatch)
    model = LocalModel(str(gguf), prompt_state_dir=str(states), constrain_tools=False, n_threads=1)
    model._load().llama.refuse_states = True
    with caplog.at_level(logging.WARNING, logger="wrapper._prompt_states"):
        assert model._turn(OTHER_MESSAGES, [], SYSTEM, None).text == "The checkout API is slow."  # type: ignore[arg-type]
    assert processes[1].evaluated == [len(prompt_of(OTHER_MESSAGES))]
    assert "llama.cpp refused it" in caplog.text
    assert path not in saved(states)


@pytest.mark.parametrize("change", ["llama_cpp version", "model file"])
def test_a_state_of_another_version_or_model_is_ignored(
    gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    processes: list[FakeStatefulLlama],
    caplog: pytest.LogCaptureFixture,
    change: str,
) -> None:
    states = tmp_path / "states"
    version = llama_cpp.__version__
    if change == "llama_cpp version":
        monkeypatch.setattr(local_model.llama_cpp, "__version__", "0.0.1")
    turn(gguf, states)
    monkeypatch.setattr(local_model.llama_cpp, "__version__", version)
    if change == "model file":
        gguf.write_bytes(b"GGUF v2")  # replaced in place: another size and modification time
    new_process(monkeypatch)
    with caplog.at_level(logging.INFO, logger="wrapper._prompt_states"):
        turn(gguf, states, OTHER_MESSAGES)
    assert processes[1].evaluated == [len(prompt_of(OTHER_MESSAGES))]
    assert "another model" in caplog.text
    assert len(saved(states)) == 2  # the other one's state is kept: it is valid for that model


def test_a_full_disk_costs_a_log_line(
    gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    processes: list[FakeStatefulLlama],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def full_disk(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("wrapper._prompt_states._write_atomically", full_disk)
    with caplog.at_level(logging.WARNING, logger="wrapper._prompt_states"):
        assert turn(gguf, tmp_path / "states") == "The checkout API is slow."
    assert "No space left on device" in caplog.text


def test_settings(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, processes: list[FakeStatefulLlama]
) -> None:
    monkeypatch.setenv("ARBITER_MODELS_DIR", str(tmp_path / "models"))
    LocalModel(str(gguf), constrain_tools=False, n_threads=1)._turn(MESSAGES, [], SYSTEM, None)  # type: ignore[arg-type]
    assert len(saved(tmp_path / "models" / "states")) == 1  # the default place
    for off in ({"prompt_state_bytes": 0}, {}):
        new_process(monkeypatch)
        monkeypatch.setenv("ARBITER_PROMPT_STATE_BYTES", "0" if not off else "1000000")
        turn(gguf, tmp_path / "off", **off)
        assert not (tmp_path / "off").exists()
    new_process(monkeypatch)
    monkeypatch.setenv("ARBITER_PROMPT_STATE_BYTES", "lots")
    with pytest.raises(ModelConfigurationError, match="ARBITER_PROMPT_STATE_BYTES"):
        turn(gguf, tmp_path / "bad")
