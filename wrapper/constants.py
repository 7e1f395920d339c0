"""Environment variables read by the wrapper package, and their defaults.

Every variable the wrapper reads is named here, so a search for the name finds its one use and its documentation.

- ``ARBITER_MODEL``: the model spec used when none is passed explicitly (``bedrock:<model id>``,
  ``ollama:<model>``, ``openai:<model>``, ``local:<path.gguf or alias>`` or ``scripted:<file.json>``).
- ``ARBITER_MODELS_DIR``: where local model weights are kept.
- ``ARBITER_PROMPT_STATE_BYTES``: disk space for the local models' prompt states kept across processes (default 2
  GiB, ``0`` turns it off; the ``prompt_state_bytes`` setting wins), under ``<models dir>/states``.
- ``OLLAMA_HOST``: the Ollama server for ``ollama:`` specs (default ``http://127.0.0.1:11434``).
- ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``: the OpenAI-compatible endpoint and key for ``openai:`` specs.
- ``ARBITER_MATCHING``: how agents are matched to a task when none is passed explicitly: ``auto`` (local
  embeddings fused with BM25 when installed, else BM25), ``bm25``, ``bedrock`` (Titan embeddings fused with BM25)
  or ``all`` (no matching: every active agent).
"""

from __future__ import annotations

ENV_MODEL = "ARBITER_MODEL"
ENV_MODELS_DIR = "ARBITER_MODELS_DIR"
ENV_PROMPT_STATE_BYTES = "ARBITER_PROMPT_STATE_BYTES"
ENV_OLLAMA_HOST = "OLLAMA_HOST"
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"
ENV_OPENAI_API_KEY = "OPENAI_API_KEY"
ENV_MATCHING = "ARBITER_MATCHING"

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
