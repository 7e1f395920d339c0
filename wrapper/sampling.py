"""Per-call sampling settings: one call of a model samples (a temperature, a seed) while the model stays greedy.

A caller that wants another draft of the same answer (the Fabricator's second candidate) asks for it with
``with sampled(temperature=0.7, seed=2): ...``; the setting holds for the calls made in that block, in this thread and
in the tasks and threads it starts with a copy of its context (``asyncio.run``, ``asyncio.to_thread``), and never for
another caller of the same model object. The local model honours it; a provider that samples by default (Bedrock,
Ollama, OpenAI) gives varied answers without it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Sampling", "current_sampling", "sampled"]


@dataclass(frozen=True)
class Sampling:
    """How to sample: ``temperature`` above 0, and the ``seed`` that makes the sample repeatable."""

    temperature: float
    seed: int

    def __post_init__(self) -> None:
        if not 0 < self.temperature <= 2:
            raise ValueError(f"a sampling temperature is above 0 and at most 2, not {self.temperature}")


_current: contextvars.ContextVar[Sampling | None] = contextvars.ContextVar("arbiter_sampling", default=None)


def current_sampling() -> Sampling | None:
    """The sampling asked for by the calling block, or ``None`` (the model's own settings hold)."""
    return _current.get()


@contextmanager
def sampled(temperature: float, seed: int) -> Iterator[Sampling]:
    """Sample the model calls made inside the block at ``temperature`` with ``seed``."""
    setting = Sampling(temperature, seed)
    token = _current.set(setting)
    try:
        yield setting
    finally:
        _current.reset(token)
