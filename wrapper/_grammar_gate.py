"""Greedy grammar-constrained sampling that checks the model's own choice before the whole vocabulary.

llama.cpp's grammar sampler matches every token of the vocabulary (151,646 for Qwen2.5) against the grammar at
every step, which makes constrained generation several times slower than free generation on a CPU. Under greedy
sampling only one token matters: the most likely one the grammar allows. :class:`GrammarGate` is a logits processor
that asks the grammar about the model's first choice alone; only when the grammar refuses it are all tokens
matched, and the refused ones masked. The text is the same as llama.cpp's grammar sampler gives (the most likely
allowed token at every step), at the speed of free generation wherever the model keeps to the grammar on its own.

It is only right for greedy sampling (temperature 0): with sampling, every candidate must be checked.
"""

from __future__ import annotations

import ctypes
import time
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

__all__ = ["GrammarGate"]

# The layout of llama.cpp's ``llama_token_data``: id, logit, p.
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


class GrammarGate:
    """A llama-cpp-python logits processor that keeps greedy sampling inside a grammar.

    Args:
        llama: the loaded ``llama_cpp.Llama``.
        grammar: a ``llama_cpp.LlamaGrammar``.

    Attributes:
        steps: tokens sampled through the gate.
        full_checks: steps where the model's first choice was refused and the whole vocabulary was matched.
        seconds: time spent in the gate (grammar matching included).

    Use it for one completion only (its grammar state follows that completion's tokens), then :meth:`close` it.
    """

    def __init__(self, llama: Any, grammar: Any) -> None:
        vocab = llama._model.vocab
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._sampler:
            raise ValueError("llama.cpp could not parse the grammar")
        self._prompt_length: int | None = None
        self._accepted = 0
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._all: npt.NDArray[Any] | None = None
        self.steps = 0
        self.full_checks = 0
        self.seconds = 0.0

    def __call__(self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        """The scores with every token the grammar refuses masked, unless the most likely token is allowed."""
        started = time.perf_counter()
        try:
            if self._prompt_length is None:
                self._prompt_length = len(input_ids)
            for token in input_ids[self._prompt_length + self._accepted :]:
                llama_cpp.llama_sampler_accept(self._sampler, int(token))
                self._accepted += 1
            self.steps += 1
            best = int(np.argmax(scores))
            if self._allows(best, float(scores[best])):
                return scores
            self.full_checks += 1
            return self._masked(scores)
        finally:
            self.seconds += time.perf_counter() - started

    def close(self) -> None:
        """Free the grammar sampler."""
        if self._sampler:
            llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None

    def _allows(self, token: int, logit: float) -> bool:
        self._one[0].id = llama_cpp.llama_token(token)
        self._one[0].logit = logit
        self._one_array.size = 1
        self._one_array.selected = -1
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(self._one_array))
        return bool(np.isfinite(self._one[0].logit))

    def _masked(self, scores: npt.NDArray[np.single]) -> npt.NDArray[np.single]:
        if self._all is None or len(self._all) != len(scores):
            self._all = np.zeros(len(scores), dtype=_TOKEN_DATA)
            self._all["id"] = np.arange(len(scores), dtype=np.intc)
        candidates = self._all
        candidates["logit"] = scores
        array = llama_cpp.llama_token_data_array(
            data=candidates.ctypes.data_as(llama_cpp.llama_token_data_p),
            size=len(candidates),
            selected=-1,
            sorted=False,
        )
        llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(array))
        masked = np.array(scores, dtype=np.single, copy=True)
        masked[~np.isfinite(candidates["logit"])] = -np.inf
        return masked
