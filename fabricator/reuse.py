"""The reuse check: is there an active agent that already does what a fabrication request asks for?

A lexical measure until the semantic matcher exists: the cosine of the two word sets (words of three letters or
more, lower-cased, lightly stemmed, common words left out) between the capability and each active agent's
description.
"""

from __future__ import annotations

import math
import re

from blackboard import AgentManifest, AgentState, Registry

__all__ = ["find_existing", "similarity"]

_WORD = re.compile(r"[a-z0-9]{3,}")
_COMMON = frozenset(
    "the and for with from that this into its are was were has have will can may any all each per not but "
    "give gives given return returns returned take takes which what when how their them they".split()
)


def _stem(word: str) -> str:
    """A very light stemmer so that "parse", "parses" and "parsed" meet: drop a plural "s", then a final "e"/"d"."""
    if word.endswith("s") and len(word) > 3:
        word = word[:-1]
    if word.endswith(("e", "d")) and len(word) > 3:
        word = word[:-1]
    return word


def _words(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in _WORD.findall(text.lower()) if w not in _COMMON)


def similarity(a: str, b: str) -> float:
    """Cosine similarity of the word sets of two texts, from 0 to 1."""
    left, right = _words(a), _words(b)
    if not left or not right:
        return 0.0
    return len(left & right) / math.sqrt(len(left) * len(right))


def find_existing(registry: Registry, capability: str, threshold: float) -> tuple[AgentManifest, float] | None:
    """The active agent whose description is most similar to ``capability``, if it reaches ``threshold``."""
    best: tuple[AgentManifest, float] | None = None
    for manifest in registry.list_agents(AgentState.ACTIVE):
        score = similarity(capability, manifest.description)
        if score >= threshold and (best is None or score > best[1]):
            best = (manifest, score)
    return best
