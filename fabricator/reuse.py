"""The reuse check without a matcher: is there an active agent that already does what a request asks for?

The lexical measure of :func:`wrapper.matching.lexical_similarity` (the cosine of the two texts' word sets) between
the capability and each active agent's description; with a :class:`~wrapper.matching.Matcher` the Fabricator asks it
instead, so that reuse and planning agree on what matches.
"""

from __future__ import annotations

from blackboard import AgentManifest, AgentState, Registry
from wrapper.matching import lexical_similarity

__all__ = ["REUSE_THRESHOLD", "find_existing"]

#: How similar an active agent's description must be to a request to be reused (0 to 1), by default.
REUSE_THRESHOLD = 0.7


def find_existing(registry: Registry, capability: str, threshold: float) -> tuple[AgentManifest, float] | None:
    """The active agent whose description is most similar to ``capability``, if it reaches ``threshold``."""
    best: tuple[AgentManifest, float] | None = None
    for manifest in registry.list_agents(AgentState.ACTIVE):
        score = lexical_similarity(capability, manifest.description)
        if score >= threshold and (best is None or score > best[1]):
            best = (manifest, score)
    return best
