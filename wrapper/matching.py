"""Capability matching: which registered agents fit a piece of text.

It keeps the planner's prompt the same size however many agents the registry holds. Embeddings (cosine similarity
of unit vectors, stored with each manifest so every backend carries them) fused with BM25, or BM25 alone (lexical,
needs nothing). :func:`default_matcher` uses the local embeddings when installed. An agent is indexed by its name,
description and input field names.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from blackboard import AgentManifest, Registry
from wrapper.constants import ENV_MATCHING
from wrapper.embeddings import BedrockEmbedder, Embedder, local_embedder
from wrapper.exceptions import ModelConfigurationError

__all__ = ["MATCHING_KINDS", "Match", "Matcher", "default_matcher", "index_text", "lexical_similarity", "matcher_for"]

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)
_COMMON = frozenset(
    "the and for with from that this into its are was were has have will can may any all each per not but "
    "give gives given return returns returned take takes which what when how their them they of to in on a an is "
    "it as by or be".split()
)
#: Reciprocal rank fusion: how deep each ranking is read, and the constant that damps the top ranks.
_FUSED_DEPTH = 30
_FUSION_C = 30
#: Descriptions are cut to this many characters before indexing (a description is for choosing, not an essay).
MAX_INDEX_CHARS = 2000


def _stem(word: str) -> str:
    """A very light stemmer so that "parse", "parses" and "parsed" meet: drop a plural "s", then a final "e"/"d"."""
    if word.endswith("s") and len(word) > 3:
        word = word[:-1]
    if word.endswith(("e", "d")) and len(word) > 3:
        word = word[:-1]
    return word


def _terms(text: str) -> list[str]:
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word in _COMMON:
            continue
        if any(ord(c) >= 0x2E80 for c in word):
            # Scripts written without spaces (Chinese, Japanese...): overlapping character pairs stand in for words.
            terms.extend(word[i : i + 2] for i in range(len(word) - 1))
        else:
            terms.append(_stem(word))
    return terms


def lexical_similarity(a: str, b: str) -> float:
    """Cosine similarity of the (stemmed) word sets of two texts, from 0 to 1."""
    left, right = set(_terms(a)), set(_terms(b))
    if not left or not right:
        return 0.0
    return len(left & right) / math.sqrt(len(left) * len(right))


def index_text(manifest: AgentManifest) -> str:
    """What an agent is matched on: its name, description and input field names."""
    fields = ", ".join(str(f) for f in (manifest.input_schema.get("properties") or {}))
    text = f"{manifest.name.replace('_', ' ').replace('-', ' ')}. {manifest.description}"
    return (text + (f" Inputs: {fields}." if fields else ""))[:MAX_INDEX_CHARS]


@dataclass(frozen=True, slots=True)
class Match:
    """An agent and how well it fits (a fused rank score with embeddings, a BM25 score without; higher is better)."""

    manifest: AgentManifest
    score: float


class Matcher:
    """An index over the registry's active agents (their newest active version each).

    Args:
        registry: where agents come from; vectors it lacks (or has from another model, or of the wrong size) are
            computed and stored back with the manifest.
        embedder: the embedding model; ``None`` uses BM25.
    """

    def __init__(self, registry: Registry, embedder: Embedder | None = None) -> None:
        self.registry = registry
        self.embedder = embedder
        self.provider = f"{embedder.name}+bm25" if embedder is not None else "bm25"
        self._lock = threading.Lock()
        self._manifests: list[AgentManifest] = []
        self._matrix: Any = None
        self._postings: dict[str, list[tuple[int, int]]] = {}
        self._lengths: list[int] = []
        self._idf: dict[str, float] = {}
        self._revision: int | None = None

    def __len__(self) -> int:
        return len(self._manifests)

    def indexed(self) -> dict[str, AgentManifest]:
        """The active agents as of the last :meth:`refresh`, by name (what ``registry.active_agents()`` returned)."""
        with self._lock:
            return {manifest.name: manifest for manifest in self._manifests}

    def refresh(self) -> None:
        """Index the registry's active agents as they are now.

        Cheap when nothing changed: the registry's :meth:`~blackboard.Registry.revision` is compared first. The
        vectors are computed (and stored back) when one is first needed, by :meth:`search` or :meth:`best`: a
        registry that fits in the planner's prompt whole is offered from :meth:`indexed`, and a process that never
        searches never loads the embedding model (about 270 MiB and a second or two of start-up).
        """
        revision, active = self.registry.current_active()  # one listing per revision, shared with other readers
        if revision == self._revision:
            return
        manifests = list(active.values())
        with self._lock:
            self._manifests = manifests
            self._matrix = None
            self._index_bm25(index_text(m) for m in manifests)
            self._revision = revision

    def _vectors(self) -> tuple[list[AgentManifest], Any]:
        """The indexed manifests and their vectors as one matrix, computing (and storing) the missing ones first."""
        with self._lock:
            manifests, matrix = self._manifests, self._matrix
        if matrix is not None or self.embedder is None:
            return manifests, matrix
        import numpy as np

        vectored, embedded = self._with_vectors(manifests, self.embedder)
        matrix = np.array([m.embedding for m in vectored], dtype=np.float32).reshape(-1, self.embedder.dimension)
        with self._lock:
            if self._manifests is manifests:  # not refreshed meanwhile
                self._manifests, self._matrix = vectored, matrix
                if embedded:
                    # Storing vectors changed the revision; read the registry once more next time rather than miss
                    # a change another writer made meanwhile.
                    self._revision = None
        return vectored, matrix

    def search(self, text: str, k: int = 8) -> list[Match]:
        """The ``k`` best agents for ``text``, best first (fewer if fewer fit).

        With embeddings, the vector ranking and the BM25 ranking are fused (reciprocal rank fusion): meaning finds
        paraphrases, words find names and identifiers, and together they miss less than either alone. The score is
        then the fused score; :meth:`best` reports the cosine.
        """
        with self._lock:
            manifests = self._manifests
        if not manifests or k < 1:
            return []
        depth = k if self.embedder is None else max(k, _FUSED_DEPTH)
        lexical = heapq.nsmallest(depth, self._bm25(text).items(), key=lambda item: (-item[1], item[0]))
        if self.embedder is None:
            return [Match(manifests[i], score) for i, score in lexical]
        manifests, matrix = self._vectors()  # the same agents in the same order, with their vectors
        fused: dict[int, float] = defaultdict(float)
        for ranking in (self._vector_ranked(text, depth, matrix), lexical):
            for rank, (i, _) in enumerate(ranking):
                fused[i] += 1.0 / (_FUSION_C + rank + 1)
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        return [Match(manifests[i], score) for i, score in ranked]

    def _vector_ranked(self, text: str, k: int, matrix: Any) -> list[tuple[int, float]]:
        import numpy as np

        assert self.embedder is not None
        query = np.array(self.embedder.embed([text[:MAX_INDEX_CHARS]])[0], dtype=np.float32)
        scores = matrix @ query
        if len(scores) > k:  # partial selection: only the top k are ordered
            candidates = np.argpartition(-scores, k - 1)[:k]
        else:
            candidates = np.arange(len(scores))
        top = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), i))
        return [(int(i), float(scores[int(i)])) for i in top]

    def similarity(self, text: str, manifest: AgentManifest) -> float:
        """How close ``text`` is to one agent, from 0 to 1 (cosine of vectors, or of word sets for BM25)."""
        if self.embedder is not None and manifest.embedding is not None:
            vector = self.embedder.embed([text[:MAX_INDEX_CHARS]])[0]
            return float(sum(a * b for a, b in zip(vector, manifest.embedding, strict=False)))
        return lexical_similarity(text, index_text(manifest))

    def best(self, text: str, threshold: float) -> Match | None:
        """The closest agent to ``text`` if its similarity (0 to 1, see :meth:`similarity`) reaches ``threshold``."""
        with self._lock:
            manifests = self._manifests
        if not manifests:
            return None
        if self.embedder is not None:
            manifests, matrix = self._vectors()
            candidates = [(manifests[i], score) for i, score in self._vector_ranked(text, 3, matrix)]
        else:
            candidates = [(m.manifest, self.similarity(text, m.manifest)) for m in self.search(text, k=3)]
        for manifest, score in sorted(candidates, key=lambda c: -c[1]):
            if score >= threshold:
                return Match(manifest, score)
        return None

    # ---------------------------------------------------------------- internals

    def _with_vectors(self, manifests: list[AgentManifest], embedder: Embedder) -> tuple[list[AgentManifest], bool]:
        stale = [
            i
            for i, m in enumerate(manifests)
            if m.embedding is None or m.embedding_model != embedder.name or len(m.embedding) != embedder.dimension
        ]
        if not stale:
            return manifests, False
        logger.debug("agents=<%d>, model=<%s> | embedding agent descriptions", len(stale), embedder.name)
        vectors = embedder.embed([index_text(manifests[i]) for i in stale])
        updated = list(manifests)
        for i, vector in zip(stale, vectors, strict=True):
            m = manifests[i]
            try:
                updated[i] = self.registry.set_embedding(m.name, m.version, vector, embedder.name)
            except Exception:  # a store that cannot keep the vector still gets matched this time
                logger.warning("agent=<%s> | could not store its embedding", m.ref, exc_info=True)
                updated[i] = m.model_copy(update={"embedding": vector, "embedding_model": embedder.name})
        return updated, True

    def _index_bm25(self, texts: Iterable[str]) -> None:
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths: list[int] = []
        for doc, text in enumerate(texts):
            terms = _terms(text)
            lengths.append(len(terms))
            for term, count in Counter(terms).items():
                postings[term].append((doc, count))
        total = len(lengths)
        self._postings, self._lengths = dict(postings), lengths
        self._idf = {t: math.log(1 + (total - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}

    def _bm25(self, text: str, k1: float = 1.5, b: float = 0.75) -> dict[int, float]:
        average = (sum(self._lengths) / len(self._lengths)) or 1.0
        scores: dict[int, float] = defaultdict(float)
        for term in set(_terms(text)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for doc, count in self._postings[term]:
                norm = count + k1 * (1 - b + b * self._lengths[doc] / average)
                scores[doc] += idf * count * (k1 + 1) / norm
        return scores


def default_matcher(registry: Registry) -> Matcher:
    """A matcher with the local embeddings when they are installed, else BM25."""
    return Matcher(registry, local_embedder())


MATCHING_KINDS = ("auto", "bm25", "bedrock", "all")


def matcher_for(registry: Registry, kind: str | None = None) -> Matcher | None:
    """The matcher ``kind`` names (explicit argument > ``$ARBITER_MATCHING`` > ``auto``); ``None`` for ``all``.

    Raises:
        ModelConfigurationError: an unknown kind.
    """
    chosen = kind or os.environ.get(ENV_MATCHING) or "auto"
    if chosen == "auto":
        return default_matcher(registry)
    if chosen == "bm25":
        return Matcher(registry)
    if chosen == "bedrock":
        return Matcher(registry, BedrockEmbedder())
    if chosen == "all":
        return None
    raise ModelConfigurationError(f"matching must be one of {', '.join(MATCHING_KINDS)}, not {chosen!r}")
